"""Ray Data reader: counts, pixels and labels of every row, both layouts, typed errors before Ray runs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from shard_data import write_shards

from synthgen.data.ray_reader import read_synthetic
from synthgen.errors import ConfigError, ShardError


@pytest.mark.ray
def test_read_synthetic_counts_labels_pixels(ray_cluster, tmp_path):
    f = write_shards(tmp_path / "out", n=45, rows_per_shard=20, row_group_size=8, seed=4)
    ds = read_synthetic(f.root)
    rows = ds.take_all()
    assert len(rows) == 45
    rows.sort(key=lambda r: r["sample_id"])  # Ray Data does not promise row order
    np.testing.assert_array_equal([r["sample_id"] for r in rows], f.sample_ids)
    np.testing.assert_array_equal([r["label"] for r in rows], f.labels)
    images = np.stack([r["image"] for r in rows])
    assert images.dtype == np.uint8 and images.shape == (45, 1, 28, 28)  # [N, C, H, W]
    np.testing.assert_array_equal(images, f.images)


def actor_classes() -> set[str]:
    from ray._private import state  # the GCS's actor table: the shared cluster runs without the state API

    return {a["ActorClassName"] for a in state.actors().values()}


@pytest.mark.ray
def test_read_synthetic_starts_no_parquet_footer_actors(ray_cluster, tmp_path):
    # Ray Data's default Parquet source starts 32 footer-reading actors per read, however few the files;
    # the manifest names every shard, so the reader needs none of them
    f = write_shards(tmp_path / "out", n=30, rows_per_shard=10)
    assert "FooterReader" not in actor_classes()
    assert len(read_synthetic(f.root).take_all()) == 30
    assert "FooterReader" not in actor_classes()


@pytest.mark.ray
def test_read_synthetic_hwc_from_file_uri(ray_cluster, tmp_path):
    f = write_shards(tmp_path / "rgb", n=10, image_shape=(3, 6, 5), rows_per_shard=4, row_group_size=2)
    ds = read_synthetic("file://" + os.path.abspath(f.root), layout="HWC")
    rows = sorted(ds.take_all(), key=lambda r: r["sample_id"])  # no ds.sort: a shuffle is slow here
    images = np.stack([r["image"] for r in rows])
    assert images.shape == (10, 6, 5, 3)  # [N, H, W, C]
    np.testing.assert_array_equal(images, f.images.transpose(0, 2, 3, 1))


@pytest.mark.ray
def test_read_synthetic_png_format(ray_cluster, tmp_path):
    # format "png": no Parquet; labels come from the class folders, ids from the file names.
    f = write_shards(tmp_path / "png", n=12, rows_per_shard=5, fmt="png")
    rows = sorted(read_synthetic(f.root).take_all(), key=lambda r: r["sample_id"])
    np.testing.assert_array_equal([r["sample_id"] for r in rows], f.sample_ids)
    np.testing.assert_array_equal([r["label"] for r in rows], f.labels)
    np.testing.assert_array_equal(np.stack([r["image"] for r in rows]), f.images)


def test_read_synthetic_errors_before_any_ray_task(tmp_path):
    f = write_shards(tmp_path / "out", n=5, write_manifest_file=False)
    with pytest.raises(ShardError, match="manifest.json not found"):
        read_synthetic(f.root)
    with pytest.raises(ConfigError, match="layout='NCHW'"):
        read_synthetic(f.root, layout="NCHW")
