"""Reproducible class-stratified subsets (``data.max_images``).

Allocation is proportional to class size with the largest-remainder method, so a balanced data set
gets equal per-class counts (differing by at most one) and an unbalanced one keeps its class mix.
Ties in the remainder go to the lower class index, so the per-class counts depend only on
``(labels, n)``; the seed picks *which* images of each class are kept.
"""

from __future__ import annotations

import numpy as np

from synthgen.errors import ConfigError


def class_quotas(labels: np.ndarray, n: int) -> dict[int, int]:
    """Per-class counts of an ``n``-image stratified subset.

    Args:
        labels: int array [N] of class ids.
        n: subset size, 1 <= n <= N.

    Returns:
        {class id: count}, counts summing to ``n``, each at most that class's size.

    Raises:
        ConfigError: ``n`` is not in [1, N].
    """
    labels = np.asarray(labels)
    total = int(labels.shape[0])
    if n < 1 or n > total:
        raise ConfigError(
            f"data.max_images={n} is invalid: the data set has {total} images; "
            f"choose 1..{total}, or 0 to use all of them"
        )
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts.astype(np.float64) * n / total  # ideal (fractional) share per class
    quota = np.floor(exact).astype(np.int64)
    remainder = n - int(quota.sum())
    # Largest fractional part first; a stable sort on -frac breaks ties by the lower class id.
    # A class with a fractional share has quota < count, so +1 never exceeds its size.
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[:remainder]] += 1
    return {int(c): int(q) for c, q in zip(classes, quota)}


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a reproducible, class-stratified subset of ``n`` items.

    Args:
        labels: int array [N] of class ids.
        n: subset size, 1 <= n <= N (``n == N`` returns every index).
        seed: picks which items of each class are kept; same seed -> same subset.

    Returns:
        int64 array [n] of sorted, unique indices into ``labels``.

    Raises:
        ConfigError: ``n`` is not in [1, N]; the message names the data size.
    """
    labels = np.asarray(labels)
    quotas = class_quotas(labels, n)
    rng = np.random.default_rng(seed)
    picked: list[np.ndarray] = []
    for cls in sorted(quotas):  # fixed class order keeps the RNG stream reproducible
        members = np.flatnonzero(labels == cls)
        picked.append(rng.choice(members, size=quotas[cls], replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int64)
