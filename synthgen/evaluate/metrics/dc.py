"""Density / coverage (Naeem et al. 2020): k-NN balls around the real test features."""

from __future__ import annotations

from synthgen.evaluate import features as F
from synthgen.evaluate.context import knn_manifold_metric

METRIC = knn_manifold_metric(
    "dc", ("density", "coverage"), F.density_coverage, "dc_k", order=40, description="density / coverage, k = dc_k (5)"
)
