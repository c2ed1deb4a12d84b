"""Evaluation stage: judge features, the metric registry (``synthgen.evaluate.metrics``, one module per metric), report.

Public entry points (imported lazily so ``synthgen --help`` stays fast)::

    evaluate(cfg: EvalConfig) -> list[dict]                 # synthgen.evaluate.run
    generate_images(path, num_samples, seed=0) -> ImageData # synthgen.evaluate.sources
    load_or_train_judge(data_cfg, cache_dir=None) -> Judge  # synthgen.judge.cache
    train_classifier(...), accuracy(...)                    # synthgen.judge.classifier
    SmallCNN                                                # synthgen.models.classifier (the network)
"""

from __future__ import annotations

import importlib
from typing import Any

from synthgen.evaluate.config import EvalConfig

_LAZY = {
    "evaluate": "synthgen.evaluate.run",
    "generate_images": "synthgen.evaluate.sources",
    "load_or_train_judge": "synthgen.judge.cache",
    "Judge": "synthgen.judge.cache",
    "SmallCNN": "synthgen.models.classifier",
    "train_classifier": "synthgen.judge.classifier",
    "accuracy": "synthgen.judge.classifier",
    "register_metric": "synthgen.evaluate.metrics",
    "ALL_METRICS": "synthgen.evaluate.metrics",
    "get_metric": "synthgen.evaluate.metrics",
}

__all__ = ["EvalConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'synthgen.evaluate' has no attribute {name!r}")
