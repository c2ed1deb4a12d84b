"""Density / coverage (Naeem et al. 2020): k-NN balls around the real test features."""

from __future__ import annotations

from typing import Any

from synthgen.evaluate import features as F
from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, ReportLine, fmt


def compute(ctx: EvalContext) -> MetricOutput:
    """Density and coverage of the generated set and of the real-train anchor."""
    k = ctx.cfg.dc_k
    d, cov = F.density_coverage(ctx.test_features(), ctx.gen_features(), k, ctx.test_radii(k))
    ad, acov = F.density_coverage(ctx.test_features(), ctx.anchor_features(), k, ctx.test_radii(k))
    return MetricOutput(results={"density": d, "coverage": cov, "anchor_density": ad, "anchor_coverage": acov},
                        settings={"k": k}, counts=ctx.counts())


def summary(r: dict[str, Any], settings: dict[str, Any]) -> list[ReportLine]:
    k = f"k={settings.get('k', '?')}"
    return [ReportLine("density", fmt(r["density"], 3), f"real train {fmt(r['anchor_density'], 3)}", k),
            ReportLine("coverage", fmt(r["coverage"], 3), f"real train {fmt(r['anchor_coverage'], 3)}", k)]


METRIC = Metric(name="dc", order=40, compute=compute, summary=summary,
                description="density / coverage, k = dc_k (5)")
