"""The training batches of one arm: real rows, synthetic rows or both at a fixed share per batch.

One path for every caller (``synthgen.data.mix``): a ``MixedDataset`` of the two parts and a ``MixedBatchSampler``
that draws all ``steps`` batches as one sampler epoch, so each part is walked in shuffled passes (every image once
before any repeats); ``class_balanced`` draws the real rows' classes uniformly.
"""

from __future__ import annotations

import torch

from synthgen.classify.settings import ClassifierSettings
from synthgen.data import ImageData
from synthgen.data.mix import ImageDataset, MixedBatchSampler, MixedDataset, synthetic_per_batch
from synthgen.errors import ConfigError


def synthetic_rows(batch_size: int, settings: ClassifierSettings, has_real: bool, has_synthetic: bool) -> int:
    """Synthetic rows in every batch of an arm.

    Args:
        batch_size: the arm's images per batch (``arm_batch_size``).
        settings: the synthetic fraction.
        has_real, has_synthetic: which parts the arm trains on.

    Returns:
        ``synthetic_per_batch(batch_size, synthetic_fraction)`` for both parts, ``batch_size`` for synthetic only,
        0 for real only.
    """
    if not has_synthetic:
        return 0
    if not has_real:
        return batch_size
    return synthetic_per_batch(batch_size, settings.synthetic_fraction)


def arm_batch_size(real: ImageData | None, synthetic: ImageData | None, settings: ClassifierSettings) -> int:
    """Images per batch of an arm: ``settings.batch_size``, or all of a one-part arm's images when fewer.

    Args:
        real, synthetic: the arm's parts (None = not used).
        settings: the batch size.

    Returns:
        ``min(batch_size, len(part))`` for a real-only or synthetic-only arm, ``batch_size`` for both parts.
    """
    if real is not None and synthetic is not None:
        return settings.batch_size
    part = real if real is not None else synthetic
    return min(settings.batch_size, len(part)) if part is not None and len(part) else settings.batch_size


def arm_batches(
    real: ImageData | None, synthetic: ImageData | None, settings: ClassifierSettings
) -> torch.utils.data.DataLoader:
    """The ``settings.steps`` training batches of one arm.

    Args:
        real: real training images (None: a synthetic-only arm).
        synthetic: synthetic images with labels in the real class order (None: a real-only arm).
        settings: batch size, steps, synthetic fraction, class balancing and seed (the batch order).

    Returns:
        A DataLoader yielding ``settings.steps`` batches of (uint8 images [B, C, H, W], int64 labels [B]),
        B = ``arm_batch_size(...)``, each with exactly ``synthetic_rows(B, ...)`` synthetic rows.

    Raises:
        ConfigError: neither part given, or a part the batches need is empty.
        ShardError: the two parts' class names differ.
    """
    template = real if real is not None else synthetic
    if template is None:
        raise ConfigError("a classifier arm needs real or synthetic images (both were None)")
    empty = ImageData("none", template.images[:0], template.labels[:0], tuple(template.class_names))
    mixed = MixedDataset(  # index [0, num_real) is real; MixedDataset checks that the class names agree
        ImageDataset(real if real is not None else empty, output="tensor"),
        ImageDataset(synthetic if synthetic is not None else empty, output="tensor"),
    )
    batch = arm_batch_size(real, synthetic, settings)
    sampler = MixedBatchSampler(
        mixed,
        batch,
        synthetic_rows(batch, settings, real is not None, synthetic is not None),
        num_batches=settings.steps,
        seed=settings.seed,
        class_balanced=settings.class_balanced,
    )
    return torch.utils.data.DataLoader(mixed, batch_sampler=sampler)
