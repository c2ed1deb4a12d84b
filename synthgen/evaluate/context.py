"""What every metric sees and returns: ``EvalContext`` in, ``MetricOutput`` out, described by a ``Metric``.

This module sits below both the registry (``synthgen.evaluate.metrics``) and the metric modules, so the
registry imports the metrics and no metric imports the registry. It does not import the evaluation config
either: ``EvalConfig.validate`` asks the registry for the metric names, which would otherwise close a cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from synthgen.data import ImageData, stratified_subset
from synthgen.evaluate import features as F

if TYPE_CHECKING:
    from synthgen.evaluate.sources import Source
    from synthgen.judge.cache import Judge


class ReportLine(NamedTuple):
    """One line of the metric table (terminal and report.html)."""

    metric: str  # what is measured, e.g. "FD (judge features)"
    value: str  # the formatted number
    anchor: str  # the same quantity for real data, e.g. "real train 3.1"
    note: str  # how to read it


@dataclass
class MetricOutput:
    results: dict[str, Any]  # the numbers (JSON-able)
    settings: dict[str, Any] = field(default_factory=dict)  # what produced them (k, subsets, epochs, ...)
    counts: dict[str, int] = field(default_factory=dict)  # sample counts per set used


# A metric's per-class columns of the report: (column title, {class name: value or None}).
PerClassColumn = tuple[str, dict[str, Any]]


def no_per_class(results: dict[str, Any]) -> list[PerClassColumn]:
    """The per-class columns of a metric that has none."""
    return []


@dataclass(frozen=True)
class Metric:
    """A registered metric: how to compute it and how its stored row reads in the report.

    ``summary`` and ``per_class`` take the ``results`` (and ``settings``) stored in metrics.jsonl, not the
    live context, so rows of earlier evaluations render the same way in the report's history.
    """

    name: str  # the key in EvalConfig.metrics and in metrics.jsonl rows
    description: str  # one line for `synthgen evaluate --help`
    compute: Callable[[EvalContext], MetricOutput]
    summary: Callable[[dict[str, Any], dict[str, Any]], list[ReportLine]]  # (results, settings) -> table lines
    per_class: Callable[[dict[str, Any]], list[PerClassColumn]] = no_per_class
    order: int = 50  # position in the default metric list: cheap metrics first, so a slow one that fails
    # later keeps the earlier results (each row is appended as soon as its metric finishes)
    details: str = ""  # extra --help lines (settings worth knowing), "" = none
    # what it measures: "generator" = a generator that draws from noise (or its shards), "translator" = an
    # image -> image checkpoint (pix2pix, cyclegan), "upscaler" = an srgan checkpoint; `--metrics all` (the
    # default) runs the metrics of the source's kind (``synthgen.evaluate.run.source_measures``)
    measures: str = "generator"


def fmt(v: Any, digits: int = 4) -> str:
    """A number as the report shows it: ``digits`` significant digits, scientific when large."""
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:.4e}"
    return str(v)


def per_class_values(
    fn: Callable[[np.ndarray, np.ndarray], float],
    names: tuple[str, ...],
    a: np.ndarray,
    a_labels: np.ndarray,
    b: np.ndarray,
    b_labels: np.ndarray,
) -> dict[str, float | None]:
    """Apply ``fn(a_c, b_c)`` per class c (None where either side has fewer than 2 rows)."""
    out: dict[str, float | None] = {}
    for c, name in enumerate(names):
        ac, bc = a[a_labels == c], b[b_labels == c]
        out[name] = fn(ac, bc) if len(ac) >= 2 and len(bc) >= 2 else None
    return out


def knn_manifold_metric(
    name: str, names: tuple[str, str], measure: Callable[..., tuple[float, float]], k_key: str, **metric: Any
) -> Metric:
    """The metric of a pair of k-NN manifold scores (P/R, D/C): the generated set's, beside the real-train anchor's.

    Args:
        name: the metric's name, e.g. "pr".
        names: its two result names, e.g. ("precision", "recall").
        measure: ``features.precision_recall`` or ``features.density_coverage``.
        k_key: the EvalConfig key of k, the neighbours that size each real test point's ball (the reference
            manifold is the real test set's).
        metric: the other ``Metric`` fields (order, description).
    """

    def compute(ctx: EvalContext) -> MetricOutput:
        k = getattr(ctx.cfg, k_key)
        first, second = measure(ctx.test_features(), ctx.gen_features(), k, ctx.test_radii(k))
        anchor_first, anchor_second = measure(ctx.test_features(), ctx.anchor_features(), k, ctx.test_radii(k))
        results = {
            names[0]: first,
            names[1]: second,
            f"anchor_{names[0]}": anchor_first,
            f"anchor_{names[1]}": anchor_second,
        }
        return MetricOutput(results=results, settings={"k": k}, counts=ctx.counts())

    def summary(r: dict[str, Any], settings: dict[str, Any]) -> list[ReportLine]:
        k = f"k={settings.get('k', '?')}"
        return [ReportLine(n, fmt(r[n], 3), f"real train {fmt(r[f'anchor_{n}'], 3)}", k) for n in names]

    return Metric(name=name, compute=compute, summary=summary, **metric)


@dataclass
class EvalContext:
    """Everything a metric may need, with features computed once and shared."""

    cfg: Any  # the EvalConfig (typed loosely: see the module docstring)
    source: Source
    judge: Judge | None  # None for a translation checkpoint (its metric trains its own classifiers)
    real_train: ImageData  # whole real training split (a translator: domain B's)
    real_test: ImageData  # whole real test split (a translator: domain B's)
    out_dir: str  # where metrics.jsonl / report.html go
    progress: bool = True  # show classifier training progress (log lines go to the "synthgen" logger)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

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
        return {
            "generated": len(self.generated()),
            "real_test": len(self.real_test),
            "real_train_anchor": int(len(self.anchor_indices())),
        }


def timed(fn: Callable[[EvalContext], MetricOutput], ctx: EvalContext) -> tuple[MetricOutput, float]:
    """Run a metric and return (its output, seconds taken)."""
    start = time.time()
    out = fn(ctx)
    return out, time.time() - start
