"""Classification accuracy score (CAS, Ravuri & Vinyals 2019): train on synthetic only, test on real.

A fresh classifier of the judge's architecture learns from ``cas.num_train`` synthetic images (by
default as many as the real training split) and is tested on the real test split. Beside it: the same
recipe trained on the same number of real training images (a judge-cache entry, so it is trained once
per data set and recipe, and *is* the judge when the recipes match), and the gap in points.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, PerClassColumn, ReportLine, fmt

log = logging.getLogger("synthgen")

# Trained-on-synthetic gaps on Fashion-MNIST published by others (real accuracy minus CAS, in points):
# the literature this metric is read against, not results of synthgen.
PUBLISHED_GAPS = {"CGAN (Lesort et al. 2019)": 8.9, "best found (GaFi, 2023)": 2.0}
BEST_PUBLISHED = "best found (GaFi, 2023)"


def anchor_recipe(ctx: EvalContext, num_real: int) -> Any:
    """The judge recipe (a JudgeConfig) with the CAS training settings, trained on ``num_real`` real images."""
    cas = {key: getattr(ctx.cfg.cas, key) for key in ("epochs", "batch_size", "lr", "augment", "seed")}
    subset = 0 if num_real >= len(ctx.real_train) else num_real
    return dataclasses.replace(ctx.cfg.judge, **cas, max_train_images=subset)


def compute(ctx: EvalContext) -> MetricOutput:
    """CAS on the real test split, the real-data accuracy of the same recipe, and the gap in points."""
    from synthgen.judge.cache import load_or_train_judge
    from synthgen.judge.classifier import per_class_accuracy, predict_logits, train_classifier

    c = ctx.cfg.cas
    wanted = c.num_train or len(ctx.real_train)
    syn = ctx.source.images(wanted)
    log.info("cas: training a classifier on %d synthetic images (%d epochs)", len(syn), c.epochs)
    recipe = anchor_recipe(ctx, min(len(syn), len(ctx.real_train)))  # the CAS recipe, on real images
    fit = recipe.fit_kwargs()
    model = train_classifier(syn.images, syn.labels, len(ctx.source.class_names), **fit, progress=ctx.progress)
    test = ctx.real_test
    pred = predict_logits(model, test.images).argmax(axis=1)  # [N_test]
    cas = float((pred == test.labels).mean())
    anchor = (
        ctx.judge
        if recipe == ctx.cfg.judge
        else load_or_train_judge(
            ctx.source.data_cfg, judge_cfg=recipe, real=(ctx.real_train, ctx.real_test), progress=ctx.progress
        )
    )
    real_acc = anchor.test_accuracy
    gap = 100.0 * (real_acc - cas)
    return MetricOutput(
        results={
            "cas": cas,
            "real_acc": real_acc,
            "gap_points": gap,
            "gap_minus_best_published": gap - PUBLISHED_GAPS[BEST_PUBLISHED],
            "per_class": per_class_accuracy(pred, test.labels, ctx.source.class_names),
        },
        settings={**fit, "real_anchor": anchor.key, "published_gaps": PUBLISHED_GAPS},
        counts={
            "synthetic_train": len(syn),
            "real_train_anchor": int(anchor.meta["data"]["num_train"]),
            "real_test": len(test),
        },
    )


def summary(r: dict[str, Any], settings: dict[str, Any]) -> list[ReportLine]:
    others = "; ".join(f"{k.split(' (')[0]} {v}" for k, v in PUBLISHED_GAPS.items() if k != BEST_PUBLISHED)
    return [
        ReportLine(
            "CAS (train synthetic, test real)",
            fmt(r["cas"], 4),
            f"real {fmt(r['real_acc'], 4)}",
            f"gap {r['gap_points']:.2f} pts ({r['gap_minus_best_published']:+.2f} vs the best published "
            f"{PUBLISHED_GAPS[BEST_PUBLISHED]}; {others})",
        )
    ]


def per_class(r: dict[str, Any]) -> list[PerClassColumn]:
    return [("CAS acc", r["per_class"])] if r.get("per_class") else []


METRIC = Metric(
    name="cas",
    order=60,
    compute=compute,
    summary=summary,
    per_class=per_class,
    description="classification accuracy score: a classifier trained on synthetic images only,",
    details="tested on real test images, beside the same recipe trained on real images, and the gap\nin points",
)
