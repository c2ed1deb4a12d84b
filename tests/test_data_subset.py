"""Class-stratified and per-class-count subsets, and the load_images front door (split / max_images /
class_counts / contract checks)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from synthgen.config import DataConfig, ExperimentConfig, load_config
from synthgen.data import SOURCES, ImageData, load_images, register_source, stratified_subset, whole_split
from synthgen.data.subset import class_count_subset, class_quotas, rarest_classes, subset_indices
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


# --- data.class_counts: a fixed per-class subset (e.g. GAMO's long tail) ----------------------------------

GAMO = [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40]


def test_class_counts_subset_has_exactly_the_counts_and_is_seeded():
    labels = balanced(per_class=50)
    counts = [50, 30, 20, 10, 7, 5, 3, 2, 1, 1]
    a = class_count_subset(labels, counts, seed=4)
    assert np.bincount(labels[a], minlength=10).tolist() == counts
    assert a.dtype == np.int64 and (np.diff(a) > 0).all()  # sorted, unique
    np.testing.assert_array_equal(a, class_count_subset(labels, counts, seed=4))  # same seed, same images
    b = class_count_subset(labels, counts, seed=5)
    assert not np.array_equal(a, b) and np.bincount(labels[b], minlength=10).tolist() == counts
    np.testing.assert_array_equal(a[labels[a] == 0], np.flatnonzero(labels == 0))  # a whole class: every image


def test_class_counts_equal_to_the_stratified_quotas_keep_the_same_images():
    labels = balanced()
    np.testing.assert_array_equal(class_count_subset(labels, [30] * 10, seed=9), stratified_subset(labels, 300, seed=9))


@pytest.mark.parametrize(
    "counts, match",
    [
        ([10] * 9, r"data.class_counts has 9 counts but the data set has 10 classes"),
        (
            [101] + [10] * 9,
            r"data.class_counts\[0\]=101 asks for more 'c0' images than the split has \(100\); "
            r"lower it to at most 100",
        ),
        ([10] * 9 + [0], r"data.class_counts\[9\]=0 \('c9'\) is invalid: every class needs >= 1 image"),
    ],
)
def test_class_counts_that_do_not_fit_name_the_key_and_the_fix(counts, match):
    with pytest.raises(ConfigError, match=match):
        class_count_subset(balanced(), counts, seed=0, class_names=[f"c{i}" for i in range(10)])


@pytest.mark.parametrize(
    "cfg, match",
    [
        (DataConfig(class_counts=(5, 5), max_images=10), r"both pick a subset.*set data.max_images=0"),
        (DataConfig(class_counts=(5, 0)), r"data.class_counts=\[5, 0\] is invalid: every class needs >= 1 image"),
        (DataConfig(max_images=-2), r"data.max_images=-2 is invalid"),
    ],
)
def test_data_config_rejects_bad_subset_keys_before_reading_data(cfg, match):
    with pytest.raises(ConfigError, match=match):
        cfg.validate()
    with pytest.raises(ConfigError, match=match):
        load_images(dataclasses.replace(cfg, source="no-such-source"))  # checked before the source is opened
    with pytest.raises(ConfigError, match=match):
        ExperimentConfig(data=cfg).validate()  # `synthgen train` refuses it before Ray starts


def test_class_counts_load_from_yaml_and_overrides(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("data:\n  class_counts: [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40]\n")
    assert load_config(ExperimentConfig, path).data.class_counts == tuple(GAMO)
    cfg = load_config(ExperimentConfig, path, ["data.class_counts=[]", "data.max_images=600"])
    assert (cfg.data.class_counts, cfg.data.max_images) == ((), 600)
    with pytest.raises(ConfigError, match="max_images"):
        load_config(ExperimentConfig, path, ["data.max_images=600"])


def test_load_images_takes_the_class_counts_subset_of_the_train_split_only(fashion_mnist_root):
    cfg = DataConfig(root=fashion_mnist_root, class_counts=tuple(GAMO), subset_seed=2)
    train = load_images(cfg, "train")
    assert np.bincount(train.labels, minlength=10).tolist() == GAMO
    full = load_images(whole_split(cfg), "train")
    keep = class_count_subset(full.labels, GAMO, seed=2)
    np.testing.assert_array_equal(train.images, full.images[keep])  # real images, in split order
    np.testing.assert_array_equal(subset_indices(full.labels, cfg, full.class_names), keep)
    assert len(load_images(cfg, "test")) == 10000  # the test split is never subset
    with pytest.raises(ConfigError, match=r"class_counts\[0\]=7000 asks for more 'T-shirt/top' images.*\(6000\)"):
        load_images(dataclasses.replace(cfg, class_counts=(7000, *GAMO[1:])))


def test_rarest_classes_are_the_smallest_counts_rarest_first():
    assert rarest_classes(GAMO, 3) == [9, 8, 7]
    assert rarest_classes([5, 1, 5, 1], 3) == [3, 1, 2]  # ties: the higher index first
    with pytest.raises(ConfigError, match="rare_classes=5 is invalid for 4 classes"):
        rarest_classes([5, 1, 5, 1], 5)


def test_around_train_varies_exactly_the_checkpoints_class_counts_subset(tmp_path):
    """`synthgen sample --around train` reads the checkpoint's data config: the real set is its subset."""
    from types import SimpleNamespace

    from PIL import Image

    from synthgen.sample.realset import load_real_set

    rng = np.random.default_rng(0)
    for split, name, n in (
        ("train", "a", 12),
        ("train", "b", 9),
        ("train", "c", 7),
        ("test", "a", 1),
        ("test", "b", 1),
        ("test", "c", 1),
    ):
        (tmp_path / split / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / split / name / f"{i}.png")
    data = DataConfig(source="imagefolder", root=str(tmp_path), resolution=8, class_counts=(6, 3, 1), subset_seed=1)
    info = SimpleNamespace(config=ExperimentConfig(data=data), class_names=("a", "b", "c"), image_shape=(1, 8, 8))
    real = load_real_set("train", info)
    trained_on = load_images(data, "train")  # what the generator of that checkpoint trained on
    np.testing.assert_array_equal(real.images, trained_on.images)
    assert real.class_images() == (6, 3, 1) and real.describe["class_counts"] == [6, 3, 1]
    other = load_real_set(
        "train",
        SimpleNamespace(**{**vars(info), "config": ExperimentConfig(data=dataclasses.replace(data, subset_seed=2))}),
    )
    assert not np.array_equal(other.images, real.images)  # another seed, other images


def test_index_halves_are_disjoint_items_matched_across_sources(fashion_mnist_root, tmp_path):
    from PIL import Image

    full = load_images(DataConfig(root=fashion_mnist_root), "train")
    odd = load_images(DataConfig(root=fashion_mnist_root, index_half="odd", max_images=100, subset_seed=1))
    np.testing.assert_array_equal(odd.images, full.images[1::2][stratified_subset(full.labels[1::2], 100, 1)])
    # an imagefolder splits on its files' integer names (jobs/make_rgb_dataset.py's <index>.png), not on order
    for split in ("train", "test"):
        os.makedirs(tmp_path / split / "c")
        for index in (3, 10, 4, 7):
            Image.fromarray(np.full((8, 8), index, dtype=np.uint8)).save(tmp_path / split / "c" / f"{index}.png")
    folder = DataConfig(source="imagefolder", root=str(tmp_path), resolution=8)
    even = load_images(dataclasses.replace(folder, index_half="even"))
    assert sorted(even.images[:, 0, 0, 0].tolist()) == [4, 10]
    assert sorted(load_images(dataclasses.replace(folder, index_half="odd")).images[:, 0, 0, 0].tolist()) == [3, 7]
    assert len(load_images(dataclasses.replace(folder, index_half="odd"), "test")) == 4  # test stays whole
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "train" / "c" / "cover.png")
    with pytest.raises(ConfigError, match="named by their item index"):
        load_images(dataclasses.replace(folder, index_half="even"))
    with pytest.raises(ConfigError, match="index_half='first' is invalid"):
        DataConfig(index_half="first").validate()
