"""Metric registry: ``@register_metric("fd")`` maps a name to ``fn(ctx: EvalContext) -> MetricOutput``.

Every distance metric compares generated images with the real *test* split in judge features, and
reports the same quantity for a real-train subset of the same size against the same test split: the
"floor" (or ceiling) a perfect generator would reach, so each number comes with its anchor.
The math lives in ``features.py`` (pure functions, unit-tested on known distributions).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from synthgen.data import ImageData, stratified_subset
from synthgen.errors import ConfigError
from synthgen.evaluate import features as F
from synthgen.evaluate.config import EvalConfig
from synthgen.evaluate.sources import Source
from synthgen.judge.cache import Judge


@dataclass
class MetricOutput:
    results: dict[str, Any]  # the numbers (JSON-able)
    settings: dict[str, Any] = field(default_factory=dict)  # what produced them (k, subsets, epochs, ...)
    counts: dict[str, int] = field(default_factory=dict)  # sample counts per set used


MetricFn = Callable[["EvalContext"], MetricOutput]
METRICS: dict[str, MetricFn] = {}


def register_metric(name: str) -> Callable[[MetricFn], MetricFn]:
    """Register ``fn(ctx) -> MetricOutput`` under ``name``."""

    def wrap(fn: MetricFn) -> MetricFn:
        if name in METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        METRICS[name] = fn
        return fn

    return wrap


def get_metric(name: str) -> MetricFn:
    """Return the metric registered as ``name``.

    Raises:
        ConfigError: unknown name; the message lists the registered ones.
    """
    from synthgen.evaluate import cas, uplift  # noqa: F401  (register "cas" and "uplift")

    if name not in METRICS:
        raise ConfigError(f"metric {name!r} is not registered; choose from {sorted(METRICS)}")
    return METRICS[name]


@dataclass
class EvalContext:
    """Everything a metric may need, with features computed once and shared."""

    cfg: EvalConfig
    source: Source
    judge: Judge
    real_train: ImageData  # whole real training split
    real_test: ImageData  # whole real test split
    out_dir: str  # where metrics.jsonl / report.html go
    progress: bool = True  # print progress lines (and classifier training progress) to stderr
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def log(self, text: str) -> None:
        if self.progress:
            print(f"[synthgen] {text}", file=sys.stderr, flush=True)

    def _cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def generated(self) -> ImageData:
        """The first ``cfg.num_samples`` synthetic images."""
        return self._cached("gen", lambda: self.source.images(self.cfg.num_samples))

    def gen_features(self) -> np.ndarray:
        return self._cached("gen_f", lambda: self.judge.features(self.generated().images))

    def _split_features(self, split: str, data: ImageData) -> np.ndarray:
        """Features of a whole real split: the judge's disk cache when it is keyed on this very data."""
        real = self.judge.real
        if real is not None and real[0 if split == "train" else 1] is data:
            return self.judge.split_features(split)
        return self._cached(f"{split}_f", lambda: self.judge.features(data.images))

    def test_features(self) -> np.ndarray:
        return self._split_features("test", self.real_test)

    def test_radii(self, k: int) -> np.ndarray:
        """k-NN radii of the real test features, for pr_k and dc_k in one pass (shared by pr and dc)."""
        ks = (self.cfg.pr_k, self.cfg.dc_k, k)
        return self._cached(f"test_radii_{sorted(set(ks))}", lambda: F.knn_radii_multi(self.test_features(), ks))[k]

    def anchor_indices(self) -> np.ndarray:
        """A stratified real-train subset as large as the generated set: the real-vs-real anchor."""
        n = min(len(self.generated()), len(self.real_train))
        return self._cached("anchor_idx", lambda: stratified_subset(self.real_train.labels, n, self.cfg.seed))

    def anchor_features(self) -> np.ndarray:
        return self.train_features()[self.anchor_indices()]

    def anchor_labels(self) -> np.ndarray:
        return self.real_train.labels[self.anchor_indices()]

    def train_features(self) -> np.ndarray:
        """Judge features of the whole real training split (anchors, nearest-neighbour search)."""
        return self._split_features("train", self.real_train)

    def counts(self) -> dict[str, int]:
        return {"generated": len(self.generated()), "real_test": len(self.real_test),
                "real_train_anchor": int(len(self.anchor_indices()))}


def _per_class(fn: Callable[[np.ndarray, np.ndarray], float], names: tuple[str, ...], a: np.ndarray,
               a_labels: np.ndarray, b: np.ndarray, b_labels: np.ndarray) -> dict[str, float | None]:
    """Apply ``fn(a_c, b_c)`` per class c (None where either side has fewer than 2 rows)."""
    out: dict[str, float | None] = {}
    for c, name in enumerate(names):
        ac, bc = a[a_labels == c], b[b_labels == c]
        out[name] = fn(ac, bc) if len(ac) >= 2 and len(bc) >= 2 else None
    return out


@register_metric("fd")
def fd_metric(ctx: EvalContext) -> MetricOutput:
    """Fréchet distance in judge features: generated vs real test, the real-train floor, their ratio, per class."""
    gen, test, anchor = ctx.gen_features(), ctx.test_features(), ctx.anchor_features()
    fd, floor = F.frechet_distance(gen, test), F.frechet_distance(anchor, test)
    names = ctx.source.class_names
    gen_pc = _per_class(F.frechet_distance, names, gen, ctx.generated().labels, test, ctx.real_test.labels)
    floor_pc = _per_class(F.frechet_distance, names, anchor, ctx.anchor_labels(), test, ctx.real_test.labels)
    return MetricOutput(
        results={"fd": fd, "fd_floor": floor, "fd_ratio": fd / floor if floor > 0 else float("inf"),
                 "per_class": {n: {"fd": gen_pc[n], "floor": floor_pc[n]} for n in names}},
        settings={"features": "judge penultimate (128-d)", "reference": "real test split"},
        counts=ctx.counts(),
    )


@register_metric("kid")
def kid_metric(ctx: EvalContext) -> MetricOutput:
    """Kernel inception distance (cubic polynomial kernel, unbiased), generated and real-train floor."""
    c = ctx.cfg
    mean, std = F.kernel_inception_distance(ctx.test_features(), ctx.gen_features(), c.kid_subsets,
                                            c.kid_subset_size, c.seed)
    fmean, fstd = F.kernel_inception_distance(ctx.test_features(), ctx.anchor_features(), c.kid_subsets,
                                              c.kid_subset_size, c.seed)
    size = min(c.kid_subset_size, len(ctx.gen_features()), len(ctx.test_features()))
    return MetricOutput(results={"kid_mean": mean, "kid_std": std, "floor_mean": fmean, "floor_std": fstd},
                        settings={"subsets": c.kid_subsets, "subset_size": size, "kernel": "(x.y/d + 1)^3"},
                        counts=ctx.counts())


@register_metric("pr")
def pr_metric(ctx: EvalContext) -> MetricOutput:
    """Improved precision / recall (k-NN manifolds), generated and real-train anchor."""
    k = ctx.cfg.pr_k
    p, r = F.precision_recall(ctx.test_features(), ctx.gen_features(), k, ctx.test_radii(k))
    ap, ar = F.precision_recall(ctx.test_features(), ctx.anchor_features(), k, ctx.test_radii(k))
    return MetricOutput(results={"precision": p, "recall": r, "anchor_precision": ap, "anchor_recall": ar},
                        settings={"k": k}, counts=ctx.counts())


@register_metric("dc")
def dc_metric(ctx: EvalContext) -> MetricOutput:
    """Density / coverage (k-NN balls around real test features), generated and real-train anchor."""
    k = ctx.cfg.dc_k
    d, cov = F.density_coverage(ctx.test_features(), ctx.gen_features(), k, ctx.test_radii(k))
    ad, acov = F.density_coverage(ctx.test_features(), ctx.anchor_features(), k, ctx.test_radii(k))
    return MetricOutput(results={"density": d, "coverage": cov, "anchor_density": ad, "anchor_coverage": acov},
                        settings={"k": k}, counts=ctx.counts())


@register_metric("label_acc")
def label_acc_metric(ctx: EvalContext) -> MetricOutput:
    """The judge's accuracy on generated images against the labels they were generated for."""
    gen = ctx.generated()
    pred = ctx.judge.predict_proba(gen.images).argmax(axis=1)
    hit = pred == gen.labels
    per_class = {n: (float(hit[gen.labels == c].mean()) if (gen.labels == c).any() else None)
                 for c, n in enumerate(ctx.source.class_names)}
    return MetricOutput(results={"label_acc": float(hit.mean()), "judge_real_test_acc": ctx.judge.test_accuracy,
                                 "per_class": per_class},
                        settings={"judge": ctx.judge.key}, counts={"generated": len(gen)})


def timed(fn: MetricFn, ctx: EvalContext) -> tuple[MetricOutput, float]:
    """Run a metric and return (its output, seconds taken)."""
    start = time.time()
    out = fn(ctx)
    return out, time.time() - start
