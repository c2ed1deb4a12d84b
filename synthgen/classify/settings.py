"""The classifier-training recipe shared by the uplift metric and ``jobs/train_classifier.py``."""

from __future__ import annotations

from dataclasses import dataclass

from synthgen.errors import ConfigError


@dataclass(frozen=True)
class ClassifierSettings:
    """How one SmallCNN is trained on real + synthetic images (one "arm"); the defaults are the uplift metric's."""

    steps: int = 2400  # Adam steps; every arm of a comparison takes the same number (equal compute)
    batch_size: int = 64  # images per Adam step, real and synthetic rows together (a one-part arm: at most its size)
    lr: float = 1e-3  # peak Adam learning rate, cosine-decayed to 0 over ``steps``
    width: int = 32  # SmallCNN first-block channels
    augment: bool = True  # random 2-pixel shifts on every batch (seeded by ``seed``)
    synthetic_fraction: float = 0.25  # real + synthetic: share of every batch drawn from the synthetic images
    class_balanced: bool = False  # real rows of every batch draw their classes uniformly (a long-tailed real set)
    # honest filter: keep the synthetic images that the real-only arm of this recipe gives at least this
    # probability of their label; 0 = keep all
    filter_threshold: float = 0.0
    seed: int = 0  # weight init, batch order and augmentation shifts
    num_threads: int = 0  # torch CPU threads while training and scoring; 0 = leave torch's current setting

    def validate(self) -> None:
        """Check the ranges.

        Raises:
            ConfigError: naming the field, the bad value and what is allowed.
        """
        checks = [
            (self.steps >= 1, "steps", self.steps, ">= 1"),
            (self.batch_size >= 2, "batch_size", self.batch_size, ">= 2"),
            (self.lr > 0, "lr", self.lr, "> 0"),
            (self.width >= 1, "width", self.width, ">= 1"),
            (0.0 < self.synthetic_fraction < 1.0, "synthetic_fraction", self.synthetic_fraction, "in (0, 1)"),
            (0.0 <= self.filter_threshold < 1.0, "filter_threshold", self.filter_threshold, "in [0, 1) (0 = off)"),
            (self.num_threads >= 0, "num_threads", self.num_threads, ">= 0 (0 = torch's setting)"),
        ]
        for ok, key, value, allowed in checks:
            if not ok:
                raise ConfigError(f"classifier {key}={value!r} is invalid: must be {allowed}")
