"""Training a classifier on real + synthetic images: the one path of the uplift metric and jobs/train_classifier.py.

    settings = ClassifierSettings(steps=2400, batch_size=64, synthetic_fraction=0.25, seed=s)
    real_only = train_and_score(real, None, test, settings)          # an arm: model + Score
    mixed = train_and_score(real, synthetic, test, settings)         # same init, same real batch order
    kept, info = honest_filter(real, synthetic, test, settings)      # filter_threshold > 0: the real-only arm filters

``batches``: the arm's batches (``synthgen.data.mix``: a share of every batch synthetic, real rows optionally
class-balanced); ``train``: a seeded SmallCNN trained by ``synthgen.judge.classifier.fit`` under one thread count;
``score``: accuracy, per-class and rare-class accuracy; ``filter``: the honest filter by p(label | image).
Both callers build a ``ClassifierSettings`` and call these, so the same inputs give the same number.
"""

from __future__ import annotations

from synthgen.classify.batches import arm_batch_size, arm_batches, synthetic_rows
from synthgen.classify.filter import Filtered, filter_synthetic, honest_filter, label_probabilities
from synthgen.classify.score import Score, rare_accuracy, rare_classes, score
from synthgen.classify.settings import ClassifierSettings
from synthgen.classify.train import Arm, torch_threads, train_and_score, train_arm

__all__ = [
    "Arm",
    "ClassifierSettings",
    "Filtered",
    "Score",
    "arm_batch_size",
    "arm_batches",
    "filter_synthetic",
    "honest_filter",
    "label_probabilities",
    "rare_accuracy",
    "rare_classes",
    "score",
    "synthetic_rows",
    "torch_threads",
    "train_and_score",
    "train_arm",
]
