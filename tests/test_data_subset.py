"""Class-stratified subsets and the load_images front door (split / max_images / contract checks)."""

from __future__ import annotations

import numpy as np
import pytest

from synthgen.config import DataConfig
from synthgen.data import SOURCES, ImageData, load_images, register_source, stratified_subset
from synthgen.data.subset import class_quotas
from synthgen.errors import ConfigError, DataError


def balanced(per_class: int = 100, classes: int = 10, seed: int = 0) -> np.ndarray:
    labels = np.repeat(np.arange(classes), per_class)
    return np.random.default_rng(seed).permutation(labels)  # shuffled, like real data


def test_balanced_exact_per_class_counts():
    labels = balanced()
    idx = stratified_subset(labels, 250, seed=0)
    assert np.bincount(labels[idx], minlength=10).tolist() == [25] * 10


def test_uneven_split_differs_by_at_most_one_lower_classes_first():
    labels = balanced()
    counts = np.bincount(labels[stratified_subset(labels, 15, seed=3)], minlength=10)
    assert counts.tolist() == [2] * 5 + [1] * 5


def test_unbalanced_classes_keep_their_proportions():
    labels = np.repeat([0, 1, 2], [600, 300, 100])
    counts = np.bincount(labels[stratified_subset(labels, 100, seed=0)])
    assert counts.tolist() == [60, 30, 10]
    # largest remainder: shares 2.5 / 1.5 / 1.0 -> floors 2 / 1 / 1, the spare one to class 0 (tie, lower id)
    assert class_quotas(np.repeat([0, 1, 2], [5, 3, 2]), 5) == {0: 3, 1: 1, 2: 1}


def test_quota_never_exceeds_class_size_and_sums_to_n():
    rng = np.random.default_rng(0)
    for _ in range(50):
        sizes = rng.integers(1, 30, size=rng.integers(1, 8))
        labels = np.repeat(np.arange(len(sizes)), sizes)
        n = int(rng.integers(1, len(labels) + 1))
        idx = stratified_subset(labels, n, seed=int(rng.integers(1 << 30)))
        assert len(idx) == n and len(np.unique(idx)) == n
        assert (np.bincount(labels[idx], minlength=len(sizes)) <= sizes).all()


def test_reproducible_sorted_and_seed_dependent():
    labels = balanced()
    a, b = stratified_subset(labels, 300, seed=7), stratified_subset(labels, 300, seed=7)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and (np.diff(a) > 0).all() and a.min() >= 0 and a.max() < len(labels)
    c = stratified_subset(labels, 300, seed=8)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(np.bincount(labels[a]), np.bincount(labels[c]))  # only the picks differ


def test_whole_set_and_out_of_range_sizes():
    labels = balanced(per_class=3)
    np.testing.assert_array_equal(stratified_subset(labels, 30, seed=1), np.arange(30))
    with pytest.raises(ConfigError, match="has 30 images"):
        stratified_subset(labels, 31, seed=0)
    with pytest.raises(ConfigError, match="max_images=0"):
        stratified_subset(labels, 0, seed=0)


def test_load_images_rejects_bad_split_and_values():
    with pytest.raises(ConfigError, match="split='val'"):
        load_images(DataConfig(), "val")
    with pytest.raises(ConfigError, match="data.channels"):
        load_images(DataConfig(channels=2))
    with pytest.raises(ConfigError, match="data.max_images"):
        load_images(DataConfig(max_images=-1))
    with pytest.raises(ConfigError, match="not a registered source"):
        load_images(DataConfig(source="cifar-99"))


def test_load_images_subsets_train_only(fashion_mnist_root):
    cfg = DataConfig(root=fashion_mnist_root, max_images=1000, subset_seed=5)
    train = load_images(cfg, "train")
    assert len(train) == 1000 and np.bincount(train.labels).tolist() == [100] * 10
    full = load_images(DataConfig(root=fashion_mnist_root), "train")
    keep = stratified_subset(full.labels, 1000, seed=5)
    np.testing.assert_array_equal(train.images, full.images[keep])  # the subset is of the real images
    assert len(load_images(cfg, "test")) == 10000  # the test split is never subset


def test_load_images_max_images_too_large_names_size(fashion_mnist_root):
    with pytest.raises(ConfigError, match="60000 images"):
        load_images(DataConfig(root=fashion_mnist_root, max_images=60001))


def test_load_images_checks_source_contract():
    name = "test-broken-source"

    @register_source(name)
    def broken(cfg: DataConfig, split: str) -> ImageData:  # float images: breaks the uint8 contract
        return ImageData(name, np.zeros((2, 1, 28, 28), np.float32), np.zeros(2, np.int64), ("a",))

    try:
        with pytest.raises(DataError, match="expected uint8"):
            load_images(DataConfig(source=name))
    finally:
        SOURCES.pop(name)
