"""Reproducible training subsets: the one home of ``data.max_images`` / ``data.class_counts`` / ``subset_seed``.

Two ways to pick a subset of the training split, both seeded by ``data.subset_seed``:

* ``max_images = n``: class-stratified. Allocation is proportional to class size with the largest-remainder
  method, so a balanced data set gets equal per-class counts (differing by at most one) and an unbalanced
  one keeps its class mix. Ties in the remainder go to the lower class index, so the per-class counts
  depend only on ``(labels, n)``.
* ``class_counts = [n_0, ..., n_{K-1}]``: exactly ``n_c`` images of class ``c`` (e.g. a long tail).

Either way the per-class counts are fixed first and the seed then picks *which* images of each class are
kept, class by class in one random stream: ``class_counts`` equal to the stratified counts of ``max_images``
keep the very same images. ``load_images`` (what the trainer, the uplift metric and ``train_classifier``
read) and ``synthgen sample --around`` (``synthgen.sample.realset``) both subset through ``subset_indices``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

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


def _pick(labels: np.ndarray, quotas: dict[int, int], seed: int) -> np.ndarray:
    """``quotas[c]`` seeded picks among the items of each class c: sorted int64 indices [sum of quotas]."""
    rng = np.random.default_rng(seed)
    picked: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    for cls in sorted(quotas):  # fixed class order keeps the RNG stream reproducible
        members = np.flatnonzero(labels == cls)
        picked.append(rng.choice(members, size=quotas[cls], replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int64)


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
    return _pick(labels, class_quotas(labels, n), seed)


def class_count_subset(
    labels: np.ndarray, counts: Sequence[int], seed: int, class_names: Sequence[str] | None = None
) -> np.ndarray:
    """Indices of a reproducible subset with exactly ``counts[c]`` items of class ``c`` (``data.class_counts``).

    Args:
        labels: int array [N] of class ids in [0, K).
        counts: K per-class counts, each in [1, items of that class].
        seed: picks which items of each class are kept; same seed -> same subset.
        class_names: the K class names (default: ``max(labels) + 1`` classes named by index), for the count
            check and the messages.

    Returns:
        int64 array [sum(counts)] of sorted, unique indices into ``labels``.

    Raises:
        ConfigError: not one count per class, a count < 1, or more than a class has (the key, the class and
            its size are named).
    """
    labels = np.asarray(labels)
    names = list(class_names) if class_names is not None else [str(c) for c in range(int(labels.max(initial=-1)) + 1)]
    counts = [int(n) for n in counts]
    if len(counts) != len(names):
        raise ConfigError(
            f"data.class_counts has {len(counts)} counts but the data set has {len(names)} classes "
            f"{names}; give one count per class, in that order"
        )
    have = np.bincount(labels, minlength=len(names))  # [K] items per class
    for c, (want, name) in enumerate(zip(counts, names)):
        if want < 1:
            raise ConfigError(f"data.class_counts[{c}]={want} ({name!r}) is invalid: every class needs >= 1 image")
        if want > have[c]:
            raise ConfigError(
                f"data.class_counts[{c}]={want} asks for more {name!r} images than the split has "
                f"({int(have[c])}); lower it to at most {int(have[c])}"
            )
    return _pick(labels, dict(enumerate(counts)), seed)


def names_a_subset(cfg: Any) -> bool:
    """Whether data config ``cfg`` asks for a training subset (``index_half``, ``max_images`` or ``class_counts``)."""
    return bool(cfg.max_images or cfg.class_counts or cfg.index_half)


def item_keys(cfg: Any, split: str, data: Any) -> np.ndarray:
    """Each image's item index (int64 [N]), what ``data.index_half`` splits on.

    The IDX sources: the image's index in its split file. An imagefolder: its file's name as an integer
    (``<index>.png``, as ``jobs/make_rgb_dataset.py`` writes them), so two folders built from one set of items
    split the same way.

    Args:
        cfg: the DataConfig ``data`` was loaded with (its whole split, in the loader's order).
        split: "train" or "test".
        data: the ImageData loaded for ``cfg`` (its ``skipped_files`` are left out of the listing).

    Raises:
        ConfigError: an imagefolder file whose name is not an integer.
    """
    n = len(data.labels)
    if cfg.source != "imagefolder":
        return np.arange(n, dtype=np.int64)
    from synthgen.data.imagefolder import listed_files

    paths = listed_files(cfg.root, split, data.skipped_files)
    keys = []
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        if not stem.isdigit():
            raise ConfigError(
                f"data.index_half={cfg.index_half!r} needs files named by their item index (e.g. 123.png, as "
                f"jobs/make_rgb_dataset.py writes them), but {path!r} is not; rename the files, or drop index_half "
                "and pick a subset with max_images / subset_seed"
            )
        keys.append(int(stem))
    if len(keys) != n:  # the listing rule changed under us: never split on wrong keys
        raise ConfigError(f"data.index_half: {len(keys)} files listed but {n} images loaded from {cfg.root!r}")
    return np.asarray(keys, dtype=np.int64)


def in_half(keys: np.ndarray, half: str) -> np.ndarray:
    """bool [N]: which item indices ``keys`` lie in ``data.index_half`` ``half`` ("even" or "odd")."""
    return np.asarray(keys) % 2 == (0 if half == "even" else 1)


def subset_indices(
    labels: np.ndarray, cfg: Any, class_names: Sequence[str], keys: np.ndarray | None = None
) -> np.ndarray:
    """The training images data config ``cfg`` keeps: its ``index_half``, then its ``max_images`` or
    ``class_counts`` subset of that half.

    Args:
        labels: int64 [N] labels of the whole training split.
        cfg: a DataConfig (index_half, max_images, class_counts, subset_seed).
        class_names: the split's K class names.
        keys: int64 [N] item indices (``item_keys``); needed when ``cfg.index_half`` is set.

    Returns:
        int64 [M] sorted indices into the split (every index when ``cfg`` names no subset).

    Raises:
        ConfigError: ``cfg`` is invalid (``DataConfig.validate``), or its subset does not fit the split.
    """
    cfg.validate()
    half = np.arange(len(labels), dtype=np.int64)  # [N]
    if cfg.index_half:
        if keys is None:
            raise ValueError("data.index_half needs the images' item keys (synthgen.data.subset.item_keys)")
        half = np.flatnonzero(in_half(keys, cfg.index_half)).astype(np.int64)
    sub = labels[half]  # [H]
    if cfg.class_counts:
        return half[class_count_subset(sub, cfg.class_counts, cfg.subset_seed, class_names)]
    if cfg.max_images:
        return half[stratified_subset(sub, cfg.max_images, cfg.subset_seed)]
    return half


def whole_split(cfg: Any) -> Any:
    """``cfg`` without its subset (no index_half, max_images 0, no class_counts): the whole training split."""
    return dataclasses.replace(cfg, max_images=0, class_counts=(), index_half="")


def rarest_classes(counts: Sequence[int], k: int) -> list[int]:
    """The ``k`` classes with the fewest images (ties: the higher class index first, so a tail ordered from
    common to rare, like GAMO's, names its last ``k`` classes), rarest first.

    Args:
        counts: images per class [K].
        k: how many classes, 1 <= k <= K.

    Returns:
        k class indices.

    Raises:
        ConfigError: ``k`` not in [1, K].
    """
    if not 1 <= k <= len(counts):
        raise ConfigError(f"rare_classes={k} is invalid for {len(counts)} classes: choose 1..{len(counts)}")
    order = sorted(range(len(counts)), key=lambda c: (int(counts[c]), -c))
    return order[:k]
