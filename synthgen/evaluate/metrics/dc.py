"""Density / coverage (Naeem et al. 2020): k-NN balls around the real test features."""

from __future__ import annotations

from synthgen.evaluate import features as F
from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, knn_manifold_metric, knn_manifold_summary

NAMES = ("density", "coverage")


def compute(ctx: EvalContext) -> MetricOutput:
    """Density and coverage of the generated set and of the real-train anchor."""
    return knn_manifold_metric(ctx, F.density_coverage, ctx.cfg.dc_k, NAMES)


METRIC = Metric(
    name="dc",
    order=40,
    compute=compute,
    summary=knn_manifold_summary(NAMES),
    description="density / coverage, k = dc_k (5)",
)
