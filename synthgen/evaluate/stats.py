"""Statistics over seeds, one home for every study: the uplift and transfer metrics and experiments/tables.py."""

from __future__ import annotations

from typing import Any

import numpy as np


def stats(values: list[float], signed: bool = False) -> dict[str, Any]:
    """Over seeds: mean, std (population), se (sample std / sqrt(n); None for one seed), the values in seed
    order, and for a difference (``signed``) how many seeds are > 0."""
    arr = np.asarray(values, dtype=np.float64)
    se = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else None
    out: dict[str, Any] = {
        "mean": float(arr.mean()),
        "std": float(arr.std()),
        "se": se,
        "values": [float(v) for v in arr],
    }
    if signed:
        out["positive"] = int((arr > 0).sum())
    return out
