"""A trained classifier on the real test split: accuracy, per-class accuracy, and the rare classes' mean."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthgen.data import ImageData
from synthgen.data.subset import rarest_classes
from synthgen.errors import DataError
from synthgen.judge.classifier import per_class_accuracy, predict_logits
from synthgen.models.classifier import SmallCNN


@dataclass(frozen=True)
class Score:
    """One classifier's test results."""

    accuracy: float  # top-1 accuracy in [0, 1] over the whole test split
    per_class: dict[str, float | None]  # class name -> accuracy within that class (None: no test image of it)


def score(model: SmallCNN, test: ImageData) -> Score:
    """Test ``model`` on ``test``.

    Args:
        model: a trained classifier.
        test: the real test split (uint8 images [N, C, H, W], labels [N]).

    Returns:
        Its accuracy and per-class accuracy.
    """
    pred = predict_logits(model, test.images).argmax(axis=1)  # [N]
    return Score(float((pred == test.labels).mean()), per_class_accuracy(pred, test.labels, test.class_names))


def rare_classes(counts: Sequence[int] | None, k: int) -> list[int] | None:
    """The ``k`` rarest classes of a long-tailed training set, rarest first (``synthgen.data.subset.rarest_classes``).

    Args:
        counts: training images per class [K] (None: unknown).
        k: how many classes.

    Returns:
        k class indices, or None when the counts are unknown or balanced, or ``k`` is not fewer than the classes.
    """
    if not counts or min(counts) == max(counts) or k >= len(counts):
        return None
    return rarest_classes(counts, k)


def rare_accuracy(per_class: dict[str, float | None], class_names: Sequence[str], rare: Sequence[int]) -> float:
    """Mean of the per-class accuracies of classes ``rare``.

    Args:
        per_class: class name -> accuracy (``Score.per_class``).
        class_names: the K class names in label order.
        rare: class indices.

    Returns:
        Their mean accuracy.

    Raises:
        DataError: the test split has no image of one of them.
    """
    values = [per_class[class_names[c]] for c in rare]
    if any(v is None for v in values):
        raise DataError(
            f"the real test split has no image of a rare class {[class_names[c] for c in rare]}: "
            "the rare accuracy needs every rare class in the test split"
        )
    return float(np.mean(values))
