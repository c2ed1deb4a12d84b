"""Real + synthetic mixing: class alignment, per-epoch and per-batch ratios, determinism, DDP split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shard_data import FASHION_CLASSES, write_shards
from torch.utils.data import DataLoader

from synthgen.data.base import ImageData
from synthgen.data.mix import ImageDataset, MixedBatchSampler, MixedDataset, MixedSampler, class_mapping
from synthgen.data.shard_dataset import SyntheticShardDataset
from synthgen.errors import ConfigError, ShardError


def _real(n: int = 30, class_names=FASHION_CLASSES, seed: int = 5) -> ImageData:
    rng = np.random.default_rng(seed)
    return ImageData(
        name="fake-real",
        images=rng.integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8),  # [N, C, H, W]
        labels=rng.integers(0, len(class_names), size=n).astype(np.int64),
        class_names=tuple(class_names),
    )


@pytest.fixture
def parts(tmp_path):
    fake = write_shards(tmp_path / "synth", n=40, rows_per_shard=16, row_group_size=8, seed=2)
    real = _real()
    return (
        real,
        fake,
        MixedDataset(ImageDataset(real, output="tensor"), SyntheticShardDataset(fake.root, output="tensor")),
    )


def test_items_are_real_then_synthetic_with_aligned_labels(parts):
    real, fake, mixed = parts
    assert len(mixed) == 70 and mixed.classes == list(FASHION_CLASSES)
    x, y = mixed[3]
    np.testing.assert_array_equal(x.numpy(), real.images[3])
    assert y == real.labels[3] and not mixed.is_synthetic(3)
    x, y = mixed[30 + 11]
    np.testing.assert_array_equal(x.numpy(), fake.images[11])
    assert y == fake.labels[11] and mixed.is_synthetic(41)
    np.testing.assert_array_equal(mixed.targets, np.concatenate([real.labels, fake.labels]))


def test_class_mismatch_names_both_lists(parts):
    _, fake, _ = parts
    other = _real(class_names=tuple(str(d) for d in range(10)))
    with pytest.raises(ShardError) as err:
        MixedDataset(ImageDataset(other), SyntheticShardDataset(fake.root))
    assert "'T-shirt/top'" in str(err.value) and "'0', '1'" in str(err.value)


def test_reordered_classes_need_remap_classes(tmp_path):
    reordered = FASHION_CLASSES[::-1]
    fake = write_shards(tmp_path / "rev", n=20, class_names=reordered, rows_per_shard=8, row_group_size=4)
    real = ImageDataset(_real())
    with pytest.raises(ShardError, match="in another order; pass remap_classes=True"):
        MixedDataset(real, SyntheticShardDataset(fake.root))
    mixed = MixedDataset(real, SyntheticShardDataset(fake.root), remap_classes=True)
    for j in range(20):
        _, y = mixed[len(real) + j]
        # Same class *name* on both sides after remapping.
        assert FASHION_CLASSES[y] == reordered[fake.labels[j]]
    np.testing.assert_array_equal(mixed.targets[len(real) :], 9 - fake.labels)


def test_class_mapping_identity_and_permutation():
    np.testing.assert_array_equal(class_mapping(["a", "b", "c"], ["a", "b", "c"]), [0, 1, 2])
    np.testing.assert_array_equal(class_mapping(["a", "b", "c"], ["c", "a", "b"], remap_classes=True), [2, 0, 1])


def test_epoch_sampler_ratio_and_coverage(parts):
    _, _, mixed = parts
    sampler = MixedSampler(mixed, synthetic_ratio=0.25, seed=0)
    idx = np.array(list(sampler))
    assert len(idx) == len(sampler) == 40  # 30 real / (1 - 0.25)
    synth = idx >= mixed.num_real
    assert synth.sum() == 10
    assert sorted(idx[~synth].tolist()) == list(range(30))  # every real sample exactly once
    assert len(set(idx[synth].tolist())) == 10  # synthetic drawn without replacement


def test_epoch_sampler_deterministic_by_seed_and_epoch(parts):
    _, _, mixed = parts
    a, b, c = (MixedSampler(mixed, 0.5, seed=s) for s in (7, 7, 8))
    assert list(a) == list(b) and list(a) != list(c)
    b.set_epoch(1)
    assert list(b) != list(a)
    a.set_epoch(1)
    assert list(a) == list(b)


def test_epoch_sampler_cycles_a_short_part_without_repeats_first(parts):
    _, _, mixed = parts
    idx = np.array(list(MixedSampler(mixed, synthetic_ratio=0.8, num_samples=100, seed=1)))
    synth = idx[idx >= mixed.num_real] - mixed.num_real
    assert len(synth) == 80
    counts = np.bincount(synth, minlength=40)
    assert counts.min() == 2 and counts.max() == 2  # 80 draws from 40: two full passes


def test_batch_sampler_exact_synthetic_per_batch(parts):
    _, _, mixed = parts
    sampler = MixedBatchSampler(mixed, batch_size=8, synthetic_per_batch=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 6  # ceil(30 real / 5 real per batch)
    for batch in batches:
        assert len(batch) == 8 and sum(mixed.is_synthetic(i) for i in batch) == 3
    real_seen = sorted(i for b in batches for i in b if i < mixed.num_real)
    assert real_seen == list(range(30))


def test_ddp_replicas_split_one_plan(parts):
    _, _, mixed = parts
    reps = [list(MixedSampler(mixed, 0.25, seed=3, num_replicas=2, rank=r)) for r in range(2)]
    whole = MixedSampler(mixed, 0.25, seed=3).plan(0)
    assert len(reps[0]) == len(reps[1]) == 20
    assert sorted(reps[0] + reps[1]) == sorted(whole.tolist())
    batches = [list(MixedBatchSampler(mixed, 8, 3, num_batches=2, seed=3, num_replicas=2, rank=r)) for r in range(2)]
    plan = MixedBatchSampler(mixed, 8, 3, num_batches=4, seed=3).plan(0).tolist()
    assert len(batches[0]) == len(batches[1]) == 2
    assert sorted(batches[0] + batches[1]) == sorted(plan)  # disjoint halves of one shared plan


def test_bad_mix_arguments_are_config_errors(parts):
    _, _, mixed = parts
    with pytest.raises(ConfigError, match="synthetic_ratio=1.5"):
        MixedSampler(mixed, 1.5)
    with pytest.raises(ConfigError, match="synthetic_per_batch=9"):
        MixedBatchSampler(mixed, 8, 9)
    empty = MixedDataset(ImageDataset(_real(n=0)), mixed.synthetic)
    with pytest.raises(ConfigError, match="real dataset is empty"):
        MixedSampler(empty, 0.5, num_samples=10)


def test_dataloader_over_mix_with_workers(parts):
    real, fake, mixed = parts
    sampler = MixedBatchSampler(mixed, batch_size=10, synthetic_per_batch=4, seed=0)
    loader = DataLoader(mixed, batch_sampler=sampler, num_workers=2)
    n = 0
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for (x, y), idx in zip(loader, sampler):
            assert x.shape == (10, 1, 28, 28) and x.dtype == torch.uint8  # [B, C, H, W]
            np.testing.assert_array_equal(y.numpy(), mixed.targets[idx])
            n += len(y)
    assert n == 2 * len(sampler) * 10


def test_real_fashion_mnist_mixes_with_synthetic_shards(fashion_mnist_root, parts):
    from synthgen.config import DataConfig
    from synthgen.data import load_images

    real = ImageDataset(load_images(DataConfig(root=fashion_mnist_root), "test"), output="tensor")
    _, fake, _ = parts
    mixed = MixedDataset(real, SyntheticShardDataset(fake.root, output="tensor"))  # same class order: no error
    sampler = MixedBatchSampler(mixed, batch_size=64, synthetic_per_batch=16, num_batches=3, seed=0)
    for (x, y), idx in zip(DataLoader(mixed, batch_sampler=sampler), sampler):
        assert x.shape == (64, 1, 28, 28) and x.dtype == torch.uint8  # [B, C, H, W]
        np.testing.assert_array_equal(y.numpy(), mixed.targets[idx])
        assert sum(mixed.is_synthetic(i) for i in idx) == 16
