"""The honest filter: keep the synthetic images that a classifier of the real images alone calls their label.

The filtering classifier is the real-only arm of the same recipe (same steps, seed and batches), and it sees
nothing beyond the real training images, so the filter uses no information the real-only baseline lacks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthgen.classify.settings import ClassifierSettings
from synthgen.classify.train import torch_threads, train_and_score
from synthgen.data import ImageData
from synthgen.errors import ConfigError
from synthgen.judge.classifier import label_probability

log = logging.getLogger("synthgen")


def label_probabilities(model: torch.nn.Module, data: ImageData, chunk: int = 1000) -> np.ndarray:
    """The classifier's softmax probability of each image's own label.

    Args:
        model: a trained classifier (put in eval mode here).
        data: uint8 images [N, C, H, W] with labels [N] in the classifier's class order.
        chunk: images per forward pass (does not change the result).

    Returns:
        float32 [N] p(label | image), the same quantity as sampling's judge filter.
    """
    model.eval()
    images = torch.from_numpy(np.ascontiguousarray(data.images))  # uint8 [N, C, H, W]
    labels = torch.from_numpy(np.asarray(data.labels, dtype=np.int64))  # [N]
    with torch.inference_mode():
        parts = [
            label_probability(model, images[i : i + chunk], labels[i : i + chunk]) for i in range(0, len(data), chunk)
        ]
    return torch.cat(parts).numpy() if parts else np.zeros(0, np.float32)  # [N]


@dataclass(frozen=True)
class Filtered:
    """The synthetic images a filter kept."""

    kept: ImageData  # the kept rows, unchanged and in their original order
    keep: np.ndarray  # int64 [M] their indices in the unfiltered images
    probability: np.ndarray  # float32 [N] p(label | image) of every unfiltered image


def filter_synthetic(model: torch.nn.Module, synthetic: ImageData, threshold: float) -> Filtered:
    """Keep the rows of ``synthetic`` to which ``model`` gives at least ``threshold`` probability of their label.

    Args:
        model: the filtering classifier.
        synthetic: images [N, C, H, W] with labels [N] in the classifier's class order.
        threshold: the least p(label | image) kept, in [0, 1).

    Returns:
        The kept rows, their indices and every row's probability.

    Raises:
        ConfigError: the threshold keeps no image.
    """
    prob = label_probabilities(model, synthetic)  # [N]
    keep = np.flatnonzero(prob >= threshold).astype(np.int64)  # [M]
    if len(keep) == 0:
        best = f"{prob.max():.3f}" if len(prob) else "undefined: there are no images"
        raise ConfigError(
            f"filter_threshold={threshold} keeps none of the {len(prob)} synthetic images "
            f"(the highest p(label) is {best}); lower it"
        )
    kept = ImageData(synthetic.name, synthetic.images[keep], synthetic.labels[keep], tuple(synthetic.class_names))
    return Filtered(kept, keep, prob)


def honest_filter(
    real: ImageData,
    synthetic: ImageData,
    test: ImageData,
    settings: ClassifierSettings,
    *,
    progress: bool = True,
) -> tuple[ImageData, dict[str, Any]]:
    """Filter ``synthetic`` by the real-only arm of ``settings`` (``train_and_score(real, None, ...)``).

    Args:
        real: the real training images (all the filtering classifier sees).
        synthetic: the synthetic images, labels in the real class order.
        test: the real test split (the real-only classifier's accuracy is reported).
        settings: the recipe; ``settings.filter_threshold`` is the least p(label) kept.
        progress: log training progress.

    Returns:
        (the kept rows, {"filter_threshold", "synthetic_before_filter", "synthetic_kept_per_class" (class name ->
        kept images), "real_only_accuracy"}).

    Raises:
        ConfigError: the threshold keeps no synthetic image.
    """
    with torch_threads(settings.num_threads):
        arm = train_and_score(real, None, test, settings, progress=progress, desc="real-only filter classifier")
        filtered = filter_synthetic(arm.model, synthetic, settings.filter_threshold)
    names = tuple(test.class_names)
    counts = np.bincount(filtered.kept.labels, minlength=len(names)).tolist()  # [K]
    info = {
        "filter_threshold": settings.filter_threshold,
        "synthetic_before_filter": len(synthetic),
        "synthetic_kept_per_class": dict(zip(names, counts)),
        "real_only_accuracy": arm.score.accuracy,
    }
    log.info(
        "filter %s: kept %d of %d synthetic images (real-only classifier: test accuracy %.4f)",
        settings.filter_threshold,
        len(filtered.keep),
        len(synthetic),
        arm.score.accuracy,
    )
    return filtered.kept, info
