"""Kernel inception distance in judge features (cubic polynomial kernel, unbiased), with the real-train floor."""

from __future__ import annotations

from typing import Any

from synthgen.evaluate import features as F
from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, ReportLine, fmt


def compute(ctx: EvalContext) -> MetricOutput:
    """KID mean and std over ``kid_subsets`` subsets, for the generated set and the real-train anchor."""
    c = ctx.cfg
    mean, std = F.kernel_inception_distance(
        ctx.test_features(), ctx.gen_features(), c.kid_subsets, c.kid_subset_size, c.seed
    )
    fmean, fstd = F.kernel_inception_distance(
        ctx.test_features(), ctx.anchor_features(), c.kid_subsets, c.kid_subset_size, c.seed
    )
    size = min(c.kid_subset_size, len(ctx.gen_features()), len(ctx.test_features()))
    return MetricOutput(
        results={"kid_mean": mean, "kid_std": std, "floor_mean": fmean, "floor_std": fstd},
        settings={"subsets": c.kid_subsets, "subset_size": size, "kernel": "(x.y/d + 1)^3"},
        counts=ctx.counts(),
    )


def summary(r: dict[str, Any], settings: dict[str, Any]) -> list[ReportLine]:
    return [
        ReportLine(
            "KID",
            f"{fmt(r['kid_mean'])} ± {fmt(r['kid_std'], 2)}",
            f"real train {fmt(r['floor_mean'])}",
            "unbiased, cubic kernel",
        )
    ]


METRIC = Metric(
    name="kid",
    order=20,
    compute=compute,
    summary=summary,
    description="kernel inception distance (unbiased, cubic kernel), mean ± std over kid_subsets subsets",
)
