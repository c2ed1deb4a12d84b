"""synthgen.classify: the one path that trains a classifier on real + synthetic images.

The uplift metric's arms and jobs/train_classifier.py give the very same accuracy for the same images, settings
and seed (a few hundred real Fashion-MNIST images in an imagefolder, a shard folder written by the real writer);
the batch builder honours the synthetic share of every batch, balances the real classes when asked and is a
function of its seed; the honest filter drops the images its classifier gives a low p(label) and counts what it
keeps.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from job_module import load_job
from shard_data import write_shards

from synthgen.classify import (
    ClassifierSettings,
    arm_batch_size,
    arm_batches,
    filter_synthetic,
    honest_filter,
    label_probabilities,
    rare_accuracy,
    rare_classes,
    synthetic_rows,
    torch_threads,
    train_and_score,
)
from synthgen.data import ImageData
from synthgen.data.mix import synthetic_per_batch
from synthgen.errors import ConfigError, DataError

NAMES = ("a", "b", "c")
REAL_PIXEL, SYN_PIXEL = 0, 255  # fake 1x1 images: the pixel tells a real row from a synthetic one


def _fake(n: int, labels: np.ndarray, pixel: int | None = None, name: str = "real") -> ImageData:
    """n 1x1 images; pixel = the row index (< 250) unless ``pixel`` is given."""
    px = np.arange(n) if pixel is None else np.full(n, pixel)
    return ImageData(name, px.astype(np.uint8).reshape(n, 1, 1, 1), np.asarray(labels, np.int64), NAMES)


def _rows(loader) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.flatten().numpy(), y.numpy()) for x, y in loader]  # [(pixels [B], labels [B]), ...]


# --- the metric and the job: one number ---------------------------------------------------------------------


CLASSES = tuple(f"c{i}" for i in range(10))  # folder-safe names for the Fashion-MNIST classes, in label order


@pytest.fixture(scope="module")
def fmnist_folder(fashion_mnist_root, tmp_path_factory):
    """A few hundred real Fashion-MNIST images as an imagefolder: 60 per class to train on, 30 per class to test."""
    from PIL import Image

    from synthgen.config import DataConfig
    from synthgen.data import load_images, stratified_subset

    root = tmp_path_factory.mktemp("fmnist")
    for split, n in (("train", 600), ("test", 300)):
        data = load_images(DataConfig(root=fashion_mnist_root), split)
        for i in stratified_subset(data.labels, n, 0):
            folder = root / split / CLASSES[data.labels[i]]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(data.images[i, 0]).save(folder / f"{i:05d}.png")
    return DataConfig(source="imagefolder", root=str(root))


def test_the_uplift_arms_and_the_classifier_job_give_the_same_accuracy(fmnist_folder, tmp_path):
    from synthgen.config import from_dict
    from synthgen.data import load_images
    from synthgen.evaluate.config import EvalConfig
    from synthgen.evaluate.context import EvalContext
    from synthgen.evaluate.metrics import get_metric
    from synthgen.evaluate.sources import Source
    from synthgen.judge.config import JudgeConfig

    data = fmnist_folder
    train, test = load_images(data, "train"), load_images(data, "test")
    shards = write_shards(tmp_path / "shards", n=240, class_names=CLASSES, rows_per_shard=100, fmt="parquet")
    recipe = {"steps": 12, "batch_size": 32, "synthetic_fraction": 0.5, "augment": True}
    uplift = {
        **recipe,
        "generator": "evaluated",
        "pool": "prior",
        "seeds": 2,
        "fractions": (0.5,),  # 300 real images per seed, class-stratified, picked by subset_seed = seed
        "num_synthetic": 200,
    }
    cfg = EvalConfig(
        checkpoint="in-memory",
        data=data,
        judge=JudgeConfig(width=6),
        uplift=from_dict(type(EvalConfig().uplift), uplift),
    )
    source = Source(
        kind="shards",
        path=shards.root,
        class_names=CLASSES,
        image_shape=(1, 28, 28),
        data_cfg=data,
        identity={"kind": "shards", "path": shards.root},
    )
    ctx = EvalContext(cfg, source, None, train, test, str(tmp_path / "eval"), progress=False)
    with torch_threads(1):  # the metric takes the process's thread count: the job's num_threads=1 below
        metric = get_metric("uplift").compute(ctx).results["by_fraction"]["50%"]
    pool = np.bincount(shards.labels[:200], minlength=10).tolist()  # the metric read the shards' first 200 rows
    assert metric["num_real"] == 300 and metric["synthetic_per_class"] == [pool, pool]

    tc = load_job("train_classifier")
    for seed in range(2):
        job = {}
        for train_on in ("real", "real+synthetic"):
            job[train_on] = tc.run(
                tc.ClassifierJobConfig(
                    data=dataclasses.replace(data, max_images=300, subset_seed=seed),
                    shards=shards.root,
                    train_on=train_on,
                    max_synthetic=200,
                    width=6,
                    seed=seed,
                    num_threads=1,  # as the metric ran (the thread count changes floating-point sums)
                    **recipe,
                ),
                progress=False,
            )
        # exact equality: the same batches, init, augmentation and scoring, not merely close
        assert job["real"]["accuracy"] == metric["real_only"]["values"][seed]
        assert job["real+synthetic"]["accuracy"] == metric["real_plus_synthetic"]["values"][seed]
        assert job["real"]["per_class_accuracy"] == metric["per_class"]["real_only"][seed]
        assert job["real+synthetic"]["per_class_accuracy"] == metric["per_class"]["real_plus_synthetic"][seed]
        assert job["real+synthetic"]["num_synthetic"] == 200 and job["real"]["num_real"] == 300
    # the pool reaches the mixed arm (random pixels and labels: it changes the result), the seeds differ
    assert metric["real_only"]["values"] != metric["real_plus_synthetic"]["values"]
    assert metric["real_only"]["values"][0] != metric["real_only"]["values"][1]


# --- the batch builder ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.9])
def test_every_batch_holds_the_synthetic_share(fraction):
    real = _fake(40, np.arange(40) % 3)
    syn = _fake(25, np.arange(25) % 3, pixel=SYN_PIXEL, name="syn")
    s = ClassifierSettings(steps=9, batch_size=16, synthetic_fraction=fraction, seed=1)
    k = synthetic_per_batch(16, fraction)
    assert synthetic_rows(16, s, True, True) == k and 0 < k < 16
    mixed = _rows(arm_batches(real, syn, s))
    assert len(mixed) == 9 and all(len(px) == 16 for px, _ in mixed)
    assert [int((px == SYN_PIXEL).sum()) for px, _ in mixed] == [k] * 9
    assert all(int((px == SYN_PIXEL).sum()) == 0 for px, _ in _rows(arm_batches(real, None, s)))  # real only
    assert all((px == SYN_PIXEL).all() for px, _ in _rows(arm_batches(None, syn, s)))  # synthetic only


def test_a_one_part_arm_smaller_than_a_batch_takes_all_its_images_per_batch():
    real, syn = _fake(10, np.arange(10) % 3), _fake(8, np.arange(8) % 3, pixel=SYN_PIXEL, name="syn")
    s = ClassifierSettings(steps=3, batch_size=16, synthetic_fraction=0.5)
    assert arm_batch_size(real, None, s) == 10 and arm_batch_size(None, syn, s) == 8
    assert arm_batch_size(real, syn, s) == 16  # both parts: the full batch, each part cycled
    assert [sorted(px.tolist()) for px, _ in _rows(arm_batches(real, None, s))] == [list(range(10))] * 3
    assert [len(px) for px, _ in _rows(arm_batches(real, syn, s))] == [16] * 3


def test_each_part_is_walked_in_shuffled_passes():
    real = _fake(40, np.arange(40) % 3)
    s = ClassifierSettings(steps=5, batch_size=16, synthetic_fraction=0.5)
    syn = _fake(24, np.arange(24) % 3, pixel=SYN_PIXEL, name="syn")
    used = np.concatenate([px[px != SYN_PIXEL] for px, _ in _rows(arm_batches(real, syn, s))])  # 40 real rows
    assert sorted(used.tolist()) == list(range(40))  # every real image once before any repeats


def test_class_balancing_draws_every_class_equally_often_and_leaves_the_synthetic_rows_alone():
    labels = np.repeat([0, 1, 2], [30, 6, 3])  # a long tail
    real = _fake(39, labels)
    syn = _fake(20, np.zeros(20), pixel=SYN_PIXEL, name="syn")  # all class a
    s = ClassifierSettings(steps=20, batch_size=12, synthetic_fraction=0.25, class_balanced=True)
    rows = _rows(arm_batches(real, syn, s))
    real_labels = np.concatenate([y[px != SYN_PIXEL] for px, y in rows])  # 20 * 9 real rows
    assert np.bincount(real_labels, minlength=3).tolist() == [60, 60, 60]
    assert np.bincount(np.concatenate([y[px == SYN_PIXEL] for px, y in rows]), minlength=3).tolist() == [60, 0, 0]
    plain = _rows(arm_batches(real, syn, dataclasses.replace(s, class_balanced=False)))
    plain_labels = np.concatenate([y[px != SYN_PIXEL] for px, y in plain])
    assert np.bincount(plain_labels, minlength=3)[0] > 120  # the real mix: 30 of 39 images are class a


def test_the_batches_are_a_function_of_the_seed():
    real = _fake(50, np.arange(50) % 3)
    syn = _fake(30, np.arange(30) % 3, pixel=SYN_PIXEL, name="syn")
    s = ClassifierSettings(steps=6, batch_size=10, synthetic_fraction=0.3, seed=4)

    def flat(settings):
        return np.concatenate([px for px, _ in _rows(arm_batches(real, syn, settings))])

    assert np.array_equal(flat(s), flat(s))
    assert not np.array_equal(flat(s), flat(dataclasses.replace(s, seed=5)))


def test_an_arm_needs_data_and_matching_classes():
    s = ClassifierSettings(steps=2, batch_size=4)
    with pytest.raises(ConfigError, match="needs real or synthetic images"):
        arm_batches(None, None, s)
    with pytest.raises(ConfigError, match="the real dataset is empty"):
        arm_batches(_fake(0, np.zeros(0)), _fake(5, np.zeros(5), pixel=SYN_PIXEL), s)
    other = ImageData("syn", np.zeros((5, 1, 1, 1), np.uint8), np.zeros(5, np.int64), ("x", "y", "z"))
    with pytest.raises(Exception, match="do not match the real classes"):
        arm_batches(_fake(5, np.zeros(5)), other, s)


# --- training, scoring ------------------------------------------------------------------------------------------


def _bands(n: int, seed: int, labels: np.ndarray | None = None) -> ImageData:
    """n noisy 8x8 images with a bright band in the label's third of the rows (an easy 3-class task)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n) if labels is None else labels
    img = rng.integers(0, 60, (n, 1, 8, 8))
    for c in range(3):
        img[y == c, :, 3 * c : 3 * c + 2, :] += 180
    return ImageData("bands", np.clip(img, 0, 255).astype(np.uint8), np.asarray(y, np.int64), NAMES)


def test_an_arm_is_deterministic_for_its_seed_and_restores_the_thread_count():
    real, test = _bands(90, 0), _bands(60, 1)
    s = ClassifierSettings(steps=15, batch_size=16, width=4, seed=2, num_threads=1)
    before = torch.get_num_threads()
    a, b = (train_and_score(real, None, test, s, progress=False) for _ in range(2))
    assert torch.get_num_threads() == before
    assert a.score == b.score
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(pa, pb), name
    c = train_and_score(real, None, test, dataclasses.replace(s, seed=3), progress=False)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.model.state_dict().values(), c.model.state_dict().values()))
    assert set(a.score.per_class) == set(NAMES)
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_rare_classes_and_their_accuracy():
    assert rare_classes([50, 6, 20], 2) == [1, 2]  # rarest first
    assert rare_classes([10, 10, 10], 1) is None  # balanced: no rare classes
    assert rare_classes([50, 6, 20], 3) is None and rare_classes(None, 1) is None
    assert rare_accuracy({"a": 1.0, "b": 0.5, "c": 0.25}, NAMES, [1, 2]) == pytest.approx(0.375)
    with pytest.raises(DataError, match="no image of a rare class"):
        rare_accuracy({"a": 1.0, "b": None, "c": 0.25}, NAMES, [1])


def test_settings_are_checked():
    ClassifierSettings().validate()
    for bad in ({"steps": 0}, {"synthetic_fraction": 1.0}, {"filter_threshold": 1.0}, {"num_threads": -1}):
        with pytest.raises(ConfigError, match=f"classifier {next(iter(bad))}="):
            ClassifierSettings(**bad).validate()


# --- the honest filter ------------------------------------------------------------------------------------------


class _PixelClassifier(torch.nn.Module):
    """Logits that call an image class ``round(first pixel)`` mod 3 with probability ~1 (pixels in [-1, 1])."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = torch.round((x[:, 0, 0, 0] + 1.0) * 127.5).long() % 3  # [N] the uint8 pixel mod 3
        return 20.0 * torch.nn.functional.one_hot(value, 3).float()  # [N, 3]


def test_the_filter_keeps_exactly_the_rows_the_classifier_gives_their_label():
    pixels = np.arange(30)
    labels = np.where(pixels < 20, pixels % 3, (pixels + 1) % 3)  # rows 20-29 mislabelled
    syn = ImageData("syn", pixels.astype(np.uint8).reshape(30, 1, 1, 1), labels.astype(np.int64), NAMES)
    out = filter_synthetic(_PixelClassifier(), syn, threshold=0.5)
    assert out.keep.tolist() == list(range(20))
    assert np.array_equal(out.kept.images, syn.images[:20]) and np.array_equal(out.kept.labels, labels[:20])
    assert (
        out.probability.shape == (30,) and (out.probability[:20] > 0.99).all() and (out.probability[20:] < 0.01).all()
    )
    assert np.array_equal(label_probabilities(_PixelClassifier(), syn, chunk=7), out.probability)  # chunking: same
    with pytest.raises(ConfigError, match="keeps none of the 10 synthetic images"):
        filter_synthetic(_PixelClassifier(), ImageData("w", syn.images[20:], syn.labels[20:], NAMES), 0.5)


def test_the_honest_filter_is_the_real_only_arm_and_counts_what_it_keeps():
    real, test = _bands(150, 0), _bands(90, 1)
    right = _bands(60, 2)
    wrong = ImageData("syn", right.images, (right.labels + 1) % 3, NAMES)  # every label wrong
    syn = ImageData(
        "syn", np.concatenate([right.images, wrong.images]), np.concatenate([right.labels, wrong.labels]), NAMES
    )
    s = ClassifierSettings(steps=40, batch_size=16, width=4, lr=3e-3, filter_threshold=0.5, seed=0, num_threads=1)
    kept, info = honest_filter(real, syn, test, s, progress=False)
    arm = train_and_score(real, None, test, s, progress=False)
    assert info["real_only_accuracy"] == arm.score.accuracy > 0.8  # the filter's classifier is this very arm
    assert info["synthetic_before_filter"] == 120 and info["filter_threshold"] == 0.5
    assert info["synthetic_kept_per_class"] == dict(zip(NAMES, np.bincount(kept.labels, minlength=3).tolist()))
    assert sum(info["synthetic_kept_per_class"].values()) == len(kept)
    source = {(img.tobytes(), int(y)) for img, y in zip(syn.images, syn.labels)}
    assert all((img.tobytes(), int(y)) in source for img, y in zip(kept.images, kept.labels))  # rows unchanged
    correct = {(img.tobytes(), int(y)) for img, y in zip(right.images, right.labels)}
    n_right = sum((img.tobytes(), int(y)) in correct for img, y in zip(kept.images, kept.labels))
    assert n_right > 45 and len(kept) - n_right < 10  # keeps the right labels, drops the wrong ones
