"""Classification accuracy score (CAS, Ravuri & Vinyals 2019): train on synthetic only, test on real.

A fresh classifier of the judge's architecture learns from ``cas.num_train`` synthetic images (by
default as many as the real training split) and is tested on the real test split. Beside it: the same
recipe trained on the same number of real training images (a judge-cache entry, so it is trained once
per data set and recipe, and *is* the judge when the recipes match), and the gap in points.
"""

from __future__ import annotations

import numpy as np

from synthgen.evaluate.metrics import EvalContext, MetricOutput, register_metric
from synthgen.judge.cache import load_or_train_judge
from synthgen.judge.classifier import accuracy, predict_logits, train_classifier
from synthgen.judge.config import JudgeConfig

# Published trained-on-synthetic gaps on Fashion-MNIST (real accuracy minus CAS, in points).
PUBLISHED_GAPS = {"CGAN (Lesort et al. 2019)": 8.9, "best found (GaFi, 2023)": 2.0}


def anchor_recipe(ctx: EvalContext, num_real: int) -> JudgeConfig:
    """The judge recipe equal to the CAS recipe, trained on ``num_real`` real images."""
    c, j = ctx.cfg.cas, ctx.cfg.judge
    return JudgeConfig(epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, width=j.width, augment=c.augment,
                       seed=c.seed, max_train_images=0 if num_real >= len(ctx.real_train) else num_real,
                       cache_dir=j.cache_dir)


def per_class_accuracy(model, images: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """Accuracy on each class of the real test split."""
    pred = predict_logits(model, images).argmax(axis=1)
    return {n: float((pred[labels == c] == c).mean()) for c, n in enumerate(names) if (labels == c).any()}


@register_metric("cas")
def cas_metric(ctx: EvalContext) -> MetricOutput:
    """CAS on the real test split, the real-data accuracy of the same recipe, and the gap in points."""
    c = ctx.cfg.cas
    wanted = c.num_train or len(ctx.real_train)
    syn = ctx.source.images(wanted)
    ctx.log(f"cas: training a classifier on {len(syn)} synthetic images ({c.epochs} epochs)")
    model = train_classifier(syn.images, syn.labels, len(ctx.source.class_names), epochs=c.epochs,
                             batch_size=c.batch_size, lr=c.lr, seed=c.seed, augment=c.augment,
                             width=ctx.cfg.judge.width, progress=ctx.progress)
    test = ctx.real_test
    cas = accuracy(model, test.images, test.labels)
    recipe = anchor_recipe(ctx, min(len(syn), len(ctx.real_train)))
    anchor = ctx.judge if recipe == ctx.cfg.judge else load_or_train_judge(
        ctx.source.data_cfg, judge_cfg=recipe, real=(ctx.real_train, ctx.real_test), progress=ctx.progress)
    real_acc = anchor.test_accuracy
    gap = 100.0 * (real_acc - cas)
    return MetricOutput(
        results={"cas": cas, "real_acc": real_acc, "gap_points": gap,
                 "gap_minus_best_published": gap - PUBLISHED_GAPS["best found (GaFi, 2023)"],
                 "per_class": per_class_accuracy(model, test.images, test.labels, ctx.source.class_names)},
        settings={"epochs": c.epochs, "batch_size": c.batch_size, "lr": c.lr, "augment": c.augment, "seed": c.seed,
                  "width": ctx.cfg.judge.width, "real_anchor": anchor.key, "published_gaps": PUBLISHED_GAPS},
        counts={"synthetic_train": len(syn), "real_train_anchor": int(anchor.meta["data"]["num_train"]),
                "real_test": len(test)},
    )
