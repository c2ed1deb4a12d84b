"""Improved precision / recall (Kynkäänniemi et al. 2019): k-NN manifolds of judge features."""

from __future__ import annotations

from synthgen.evaluate import features as F
from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, knn_manifold_metric, knn_manifold_summary

NAMES = ("precision", "recall")


def compute(ctx: EvalContext) -> MetricOutput:
    """Precision and recall of the generated set and of the real-train anchor against the real test set."""
    return knn_manifold_metric(ctx, F.precision_recall, ctx.cfg.pr_k, NAMES)


METRIC = Metric(
    name="pr",
    order=30,
    compute=compute,
    summary=knn_manifold_summary(NAMES),
    description="improved precision / recall, k = pr_k (3)",
)
