"""The metric registry, shaped like StyleGAN2-ADA's ``metric_main``: it imports the metric modules, never
the reverse.

Every module in this package defines ``METRIC = Metric(...)`` (``synthgen.evaluate.context``): its name, a
one-line description, ``compute(ctx) -> MetricOutput`` and the report lines of a stored row. The registry
finds them by listing the package, so adding a metric is one new file here (plus its test); the default
metric list, ``evaluate --help``, the metric table and the per-class table all read from this registry.
Metric modules import only light modules at load time (numpy, the context), so listing them stays cheap
enough for ``synthgen --help``; what they need to run is imported when they run.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from synthgen.errors import ConfigError
from synthgen.evaluate.context import Metric

METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (the package's own modules are added on import).

    Raises:
        ConfigError: a metric of that name is already registered.
    """
    if metric.name in METRICS:
        raise ConfigError(f"metric {metric.name!r} is registered twice; give the new metric another name")
    METRICS[metric.name] = metric
    return metric


def _load_package_metrics() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        metric = getattr(module, "METRIC", None)
        if not isinstance(metric, Metric):
            raise ImportError(
                f"{module.__name__} defines no METRIC = Metric(...): every module of {__name__} is a metric"
            )
        register_metric(metric)


def metric_names() -> tuple[str, ...]:
    """Every registered metric name, cheap ones first (``Metric.order``, then name)."""
    return tuple(m.name for m in sorted(METRICS.values(), key=lambda m: (m.order, m.name)))


def get_metric(name: str) -> Metric:
    """Return the metric registered as ``name``.

    Raises:
        ConfigError: unknown name; the message lists the registered ones.
    """
    if name not in METRICS:
        raise ConfigError(f"metric {name!r} is not registered; choose from {list(metric_names())}")
    return METRICS[name]


def describe_metrics(indent: int = 2) -> str:
    """The metric list of ``synthgen evaluate --help``: one line per metric, then its details."""
    width = max(len(n) for n in METRICS) + 2
    lines = []
    for name in metric_names():
        m = METRICS[name]
        lines.append(f"{' ' * indent}{name:<{width}}{m.description}")
        lines += [f"{' ' * (indent + width)}{d}" for d in m.details.splitlines() if d.strip()]
    return "\n".join(lines)


def __getattr__(name: str) -> Any:
    # ALL_METRICS is computed on access, so a metric registered later (a plugin, a test) is in it too.
    if name == "ALL_METRICS":
        return metric_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_load_package_metrics()

__all__ = ["ALL_METRICS", "METRICS", "Metric", "describe_metrics", "get_metric", "metric_names", "register_metric"]
