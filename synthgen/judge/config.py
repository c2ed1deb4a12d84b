"""Typed, frozen config values of the judge: its training recipe (``EvalConfig.judge``) and the judge filter
(``--filter judge:T`` of sampling and evaluation), parsed once where a config is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthgen.errors import ConfigError

FILTER_KINDS = ("judge",)


@dataclass(frozen=True)
class JudgeConfig:
    epochs: int = 4  # passes over the real training split
    batch_size: int = 128  # images per Adam step
    lr: float = 1e-3  # Adam learning rate (cosine-decayed to 0)
    width: int = 32  # SmallCNN first-block channels (features are always 128-d)
    augment: bool = False  # random 2-px shifts while training
    seed: int = 0  # weight init and batch order
    max_train_images: int = 0  # 0 = the whole training split; N = a stratified subset (tests, smoke runs)
    cache_dir: str = ""  # "" = ~/.cache/synthgen/judges; trained judges are reused per dataset + config

    def fit_kwargs(self) -> dict[str, Any]:
        """The ``train_classifier`` keyword arguments of this recipe: epochs, batch_size, lr, augment, seed, width."""
        return {name: getattr(self, name) for name in ("epochs", "batch_size", "lr", "augment", "seed", "width")}


@dataclass(frozen=True)
class FilterSpec:
    """A judge filter: keep generated images whose judge probability of their label is >= ``threshold``.

    A config value written as text (``judge:0.9``): ``synthgen.config_io`` reads it with ``from_text`` and
    writes it with ``to_text``, so configs, plans and manifests hold the canonical text and code the typed value.
    """

    kind: str  # "judge": the judge's probability of the requested label
    threshold: float  # keep an image when that probability is >= threshold, in (0, 1)

    @classmethod
    def from_text(cls, spec: str) -> FilterSpec | None:
        """Parse ``--filter``: ``""`` / ``none`` / ``off`` = no filter (None), ``judge:T`` with T in (0, 1).

        Raises:
            ConfigError: any other text; the message shows the accepted form.
        """
        text = (spec or "").strip().lower()
        if text in ("", "none", "off"):
            return None
        kind, _, value = text.partition(":")
        if kind not in FILTER_KINDS:
            raise ConfigError(f"filter={spec!r} is invalid: use judge:THRESHOLD, e.g. judge:0.9 (or '' for none)")
        try:
            threshold = float(value)
        except ValueError:
            raise ConfigError(
                f"filter={spec!r} is invalid: the threshold must be a number in (0, 1), e.g. judge:0.9"
            ) from None
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"filter={spec!r} is invalid: the threshold must be in (0, 1), e.g. judge:0.9")
        return cls(kind, threshold)

    def to_text(self) -> str:
        """The canonical text written into configs, plans and manifests, e.g. ``judge:0.9``."""
        return f"{self.kind}:{self.threshold:g}"

    def __str__(self) -> str:
        return self.to_text()
