"""The judge's accuracy on generated images against the labels they were generated for."""

from __future__ import annotations

from typing import Any

from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, PerClassColumn, ReportLine, fmt


def compute(ctx: EvalContext) -> MetricOutput:
    """Overall and per-class label accuracy, beside the judge's own accuracy on the real test split."""
    from synthgen.judge.classifier import per_class_accuracy  # torch: imported when the metric runs

    gen = ctx.generated()
    pred = ctx.judge.predict_proba(gen.images).argmax(axis=1)  # [N]
    return MetricOutput(
        results={
            "label_acc": float((pred == gen.labels).mean()),
            "judge_real_test_acc": ctx.judge.test_accuracy,
            "per_class": per_class_accuracy(pred, gen.labels, ctx.source.class_names),
        },
        settings={"judge": ctx.judge.key},
        counts={"generated": len(gen)},
    )


def summary(r: dict[str, Any], settings: dict[str, Any]) -> list[ReportLine]:
    return [
        ReportLine(
            "label accuracy (judge)",
            fmt(r["label_acc"], 4),
            f"judge on real test {fmt(r['judge_real_test_acc'], 4)}",
            "generated image has its label",
        )
    ]


def per_class(r: dict[str, Any]) -> list[PerClassColumn]:
    return [("label acc", r["per_class"])] if r.get("per_class") else []


METRIC = Metric(
    name="label_acc",
    order=50,
    compute=compute,
    summary=summary,
    per_class=per_class,
    description="the judge's accuracy on generated images against their requested labels",
)
