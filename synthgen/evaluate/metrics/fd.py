"""Fréchet distance in judge features: generated vs real test, beside the real-train floor, and per class."""

from __future__ import annotations

from typing import Any

from synthgen.evaluate import features as F
from synthgen.evaluate.context import (
    EvalContext,
    Metric,
    MetricOutput,
    PerClassColumn,
    ReportLine,
    fmt,
    per_class_values,
)


def compute(ctx: EvalContext) -> MetricOutput:
    """FD of the generated set and of an equally large real-train subset (the floor), their ratio, per class."""
    gen, test, anchor = ctx.gen_features(), ctx.test_features(), ctx.anchor_features()
    fd, floor = F.frechet_distance(gen, test), F.frechet_distance(anchor, test)
    names = ctx.source.class_names
    gen_pc = per_class_values(F.frechet_distance, names, gen, ctx.generated().labels, test, ctx.real_test.labels)
    floor_pc = per_class_values(F.frechet_distance, names, anchor, ctx.anchor_labels(), test, ctx.real_test.labels)
    return MetricOutput(
        results={
            "fd": fd,
            "fd_floor": floor,
            "fd_ratio": fd / floor if floor > 0 else float("inf"),
            "per_class": {n: {"fd": gen_pc[n], "floor": floor_pc[n]} for n in names},
        },
        settings={"features": "judge penultimate (128-d)", "reference": "real test split"},
        counts=ctx.counts(),
    )


def summary(r: dict[str, Any], settings: dict[str, Any]) -> list[ReportLine]:
    return [
        ReportLine(
            "FD (judge features)",
            fmt(r["fd"]),
            f"real train {fmt(r['fd_floor'])}",
            f"ratio {fmt(r['fd_ratio'], 3)} (1 = as close as real data)",
        )
    ]


def per_class(r: dict[str, Any]) -> list[PerClassColumn]:
    pc = r.get("per_class") or {}
    return (
        [("FD", {n: v["fd"] for n, v in pc.items()}), ("FD floor", {n: v["floor"] for n, v in pc.items()})]
        if pc
        else []
    )


METRIC = Metric(
    name="fd",
    order=10,
    compute=compute,
    summary=summary,
    per_class=per_class,
    description="Fréchet distance generated vs real test; floor = real train vs real test; ratio; per class",
)
