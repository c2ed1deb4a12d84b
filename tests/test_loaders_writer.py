"""Round trip through the real shard writer (synthgen.sample): write N with it, read N with the loaders."""

from __future__ import annotations

import numpy as np
import pytest

from shard_fixtures import FASHION_CLASSES
from synthgen.data.shards import SyntheticShardDataset, load_shard_arrays
from synthgen.sample.config import SampleConfig
from synthgen.sample.manifest import build_manifest, write_manifest
from synthgen.sample.plan import make_plan
from synthgen.sample.verify import verify_output
from synthgen.sample.writer import encode_batch, write_shard
from synthgen.storage import Location


def _write_with_real_writer(out: str, fmt: str, n: int = 37, seed: int = 0):
    """Write n random images exactly as ``synthgen sample`` lays them out; return (images, labels)."""
    cfg = SampleConfig(checkpoint="unused", out=out, num_samples=n, format=fmt, images_per_shard=15, row_group_size=4)
    plan = make_plan(cfg, "0" * 64, FASHION_CLASSES, (1, 28, 28), z_dim=8)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)  # [N, C, H, W]
    # Labels with exactly the plan's per-class counts, in a shuffled order.
    labels = rng.permutation(np.repeat(np.arange(len(FASHION_CLASSES)), plan.class_counts)).astype(np.int64)
    od = Location(out)
    records = []
    for shard in plan.shards():
        ids = np.arange(shard.start, shard.end, dtype=np.int64)
        records.append(write_shard(od, plan, shard, ids, labels[ids], encode_batch(images[ids]), "test"))
    manifest = build_manifest(plan, records, checkpoint_path="unused", resolved_path="unused", checkpoint_step=0,
                              sample_config={}, train_config={})
    write_manifest(od, manifest)
    report = verify_output(out)
    assert report.ok, report.problems  # the folder is what the real pipeline would leave
    return images, labels


@pytest.mark.parametrize("fmt", ["parquet", "png", "both"])
def test_real_writer_round_trip(tmp_path, fmt):
    images, labels = _write_with_real_writer(str(tmp_path / "out"), fmt)
    ds = SyntheticShardDataset(str(tmp_path / "out"), output="tensor")
    assert len(ds) == 37 and ds.classes == list(FASHION_CLASSES)
    np.testing.assert_array_equal(ds.sample_ids, np.arange(37))
    np.testing.assert_array_equal(ds.targets, labels)
    for i in (0, 3, 4, 14, 15, 36):
        x, y = ds[i]
        np.testing.assert_array_equal(x.numpy(), images[i])
        assert y == labels[i]
    data = load_shard_arrays(str(tmp_path / "out"))
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
