"""Improved precision / recall (Kynkäänniemi et al. 2019): k-NN manifolds of judge features."""

from __future__ import annotations

from typing import Any

from synthgen.evaluate import features as F
from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, ReportLine, fmt


def compute(ctx: EvalContext) -> MetricOutput:
    """Precision and recall of the generated set and of the real-train anchor against the real test set."""
    k = ctx.cfg.pr_k
    p, r = F.precision_recall(ctx.test_features(), ctx.gen_features(), k, ctx.test_radii(k))
    ap, ar = F.precision_recall(ctx.test_features(), ctx.anchor_features(), k, ctx.test_radii(k))
    return MetricOutput(results={"precision": p, "recall": r, "anchor_precision": ap, "anchor_recall": ar},
                        settings={"k": k}, counts=ctx.counts())


def summary(r: dict[str, Any], settings: dict[str, Any]) -> list[ReportLine]:
    k = f"k={settings.get('k', '?')}"
    return [ReportLine("precision", fmt(r["precision"], 3), f"real train {fmt(r['anchor_precision'], 3)}", k),
            ReportLine("recall", fmt(r["recall"], 3), f"real train {fmt(r['anchor_recall'], 3)}", k)]


METRIC = Metric(name="pr", order=30, compute=compute, summary=summary,
                description="improved precision / recall, k = pr_k (3)")
