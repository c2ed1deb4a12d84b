"""Improved precision / recall (Kynkäänniemi et al. 2019): k-NN manifolds of judge features."""

from __future__ import annotations

from synthgen.evaluate import features as F
from synthgen.evaluate.context import knn_manifold_metric

METRIC = knn_manifold_metric(
    "pr",
    ("precision", "recall"),
    F.precision_recall,
    "pr_k",
    order=30,
    description="improved precision / recall, k = pr_k (3)",
)
