"""SyntheticShardDataset and load_shard_arrays: round trips, DataLoader workers, URIs, typed errors."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
from shard_data import write_shards
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from synthgen.data.shard_dataset import SyntheticShardDataset, load_shard_arrays
from synthgen.errors import ConfigError, ShardError
from synthgen.shards import read_manifest


def _snapshot(root) -> dict[str, tuple[int, int]]:
    """Every file under root -> (size, mtime_ns): proves an error changed nothing on disk."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            st = os.stat(os.path.join(d, f))
            out[os.path.join(d, f)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def shards(tmp_path):
    # 3 shards of 20/20/10 rows, row groups of 8: indices cross shard and row-group borders.
    return write_shards(tmp_path / "out", n=50, rows_per_shard=20, row_group_size=8, seed=1)


def test_round_trip_pil_ids_labels_pixels(shards):
    ds = SyntheticShardDataset(shards.root)
    assert len(ds) == 50
    np.testing.assert_array_equal(ds.sample_ids, shards.sample_ids)
    for i in range(len(ds)):
        img, label = ds[i]
        assert img.mode == "L" and img.size == (28, 28)
        assert label == shards.labels[i]
        np.testing.assert_array_equal(np.asarray(img), shards.images[i, 0])


def test_tensor_output_is_uint8_chw(tmp_path):
    f = write_shards(tmp_path / "rgb", n=12, image_shape=(3, 8, 10), rows_per_shard=5, row_group_size=2)
    ds = SyntheticShardDataset(f.root, output="tensor")
    for i in (0, 4, 5, 11, -1):
        x, label = ds[i]
        assert x.dtype == torch.uint8 and tuple(x.shape) == (3, 8, 10)
        np.testing.assert_array_equal(x.numpy(), f.images[i])
        assert label == f.labels[i]


def test_transforms_are_applied(shards):
    ds = SyntheticShardDataset(
        shards.root,
        transform=v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]),
        target_transform=lambda y: y + 100,
        output="pil",
    )
    x, y = ds[7]
    assert y == shards.labels[7] + 100
    assert x.dtype == torch.float32 and tuple(x.shape) == (1, 28, 28)  # [C, H, W]
    torch.testing.assert_close(x, torch.from_numpy(shards.images[7]).float() / 255.0)


def test_classes_and_targets_without_decoding(shards):
    ds = SyntheticShardDataset(shards.root)
    assert ds.classes == list(shards.class_names)
    assert ds.class_to_idx["T-shirt/top"] == 0 and ds.class_to_idx["Ankle boot"] == 9
    np.testing.assert_array_equal(ds.targets, shards.labels)
    assert ds._local is None  # no image row group was read or cached to provide them


def test_index_bounds(shards):
    ds = SyntheticShardDataset(shards.root)
    np.testing.assert_array_equal(np.asarray(ds[-1][0]), shards.images[49, 0])
    with pytest.raises(IndexError):
        ds[50]


def test_tiny_cache_still_correct(shards):
    # A 1-byte budget evicts every row group but the last one: random access must stay exact.
    ds = SyntheticShardDataset(shards.root, output="tensor", cache_bytes=1)
    for i in np.random.default_rng(0).permutation(50):
        np.testing.assert_array_equal(ds[int(i)][0].numpy(), shards.images[i])
    assert len(ds._local.cache) == 1


def test_pickle_carries_no_open_handles(shards):
    ds = SyntheticShardDataset(shards.root)
    ds[3]  # opens a file and fills the cache in this process
    assert ds._local is not None and ds._local.files
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._local is None
    np.testing.assert_array_equal(np.asarray(clone[33][0]), shards.images[33, 0])


def test_forked_process_reopens_files(shards):
    ds = SyntheticShardDataset(shards.root)
    ds[0]
    inherited = ds._local
    inherited.pid = -1  # what a forked DataLoader worker sees: state created by another process
    np.testing.assert_array_equal(np.asarray(ds[1][0]), shards.images[1, 0])
    assert ds._local is not inherited and ds._local.pid == os.getpid()


def test_dataloader_two_workers_reads_everything_once(shards):
    ds = SyntheticShardDataset(shards.root, output="tensor")
    ds[0]  # the parent holds open handles before forking: workers must not share them
    loader = DataLoader(ds, batch_size=7, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0))
    images, labels, seen = [], [], 0
    for x, y in loader:
        assert x.dtype == torch.uint8 and x.shape[1:] == (1, 28, 28)  # [B, C, H, W]
        images.append(x)
        labels.append(y)
        seen += len(y)
    assert seen == 50
    got_x, got_y = torch.cat(images).numpy(), torch.cat(labels).numpy()
    # Shuffled: match each returned image to its source row by pixels, then check its label.
    flat = shards.images.reshape(50, -1)
    rows = [int(np.flatnonzero((flat == img.reshape(-1)).all(axis=1))[0]) for img in got_x]
    assert sorted(rows) == list(range(50))
    np.testing.assert_array_equal(got_y, shards.labels[rows])


def test_png_format_folder(tmp_path):
    # format "png" has no Parquet: images come from png/<class>/<id>.png via the shard indexes.
    f = write_shards(tmp_path / "png", n=13, rows_per_shard=5, fmt="png")
    ds = SyntheticShardDataset(f.root, output="tensor")
    np.testing.assert_array_equal(ds.targets, f.labels)
    np.testing.assert_array_equal(np.stack([ds[i][0].numpy() for i in range(13)]), f.images)
    np.testing.assert_array_equal(load_shard_arrays(f.root).images, f.images)


def test_png_format_missing_or_corrupt_image_is_a_shard_error(tmp_path):
    f = write_shards(tmp_path / "png", n=6, rows_per_shard=3, fmt="png")
    ds = SyntheticShardDataset(f.root)
    paths = ds._index.png_files
    with open(os.path.join(f.root, paths[1]), "wb") as fh:
        fh.write(b"not a png")
    os.remove(os.path.join(f.root, paths[4]))
    with pytest.raises(ShardError, match="sample_id=1: unreadable PNG"):
        ds[1]
    with pytest.raises(ShardError, match=f"cannot read {paths[4]}"):
        ds[4]


def test_file_uri_access(shards):
    ds = SyntheticShardDataset("file://" + os.path.abspath(shards.root))
    np.testing.assert_array_equal(np.asarray(ds[21][0]), shards.images[21, 0])
    data = load_shard_arrays("file://" + os.path.abspath(shards.root))
    np.testing.assert_array_equal(data.images, shards.images)


def test_load_shard_arrays_round_trip(shards):
    data = load_shard_arrays(shards.root)
    assert data.images.dtype == np.uint8 and data.images.shape == (50, 1, 28, 28)
    np.testing.assert_array_equal(data.images, shards.images)
    np.testing.assert_array_equal(data.labels, shards.labels)
    assert data.class_names == shards.class_names


def test_load_shard_arrays_limit(shards):
    data = load_shard_arrays(shards.root, limit=23)
    np.testing.assert_array_equal(data.images, shards.images[:23])
    np.testing.assert_array_equal(data.labels, shards.labels[:23])


def test_missing_manifest_is_a_shard_error(tmp_path):
    f = write_shards(tmp_path / "out", n=10, write_manifest_file=False)
    before = _snapshot(f.root)
    for fn in (SyntheticShardDataset, load_shard_arrays):
        with pytest.raises(ShardError, match="manifest.json not found.*re-run `synthgen sample`"):
            fn(f.root)
    assert _snapshot(f.root) == before


def test_missing_shard_is_a_shard_error(shards):
    os.remove(os.path.join(shards.root, shards.shard_files[1]))
    with pytest.raises(ShardError, match="shard-000001.parquet is listed in the manifest but missing"):
        SyntheticShardDataset(shards.root)


def test_truncated_shard_is_a_shard_error(shards):
    path = os.path.join(shards.root, shards.shard_files[0])
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) - 10)
    with pytest.raises(ShardError, match="truncated or replaced"):
        SyntheticShardDataset(shards.root)


def test_inconsistent_manifest_is_a_shard_error(shards):
    path = os.path.join(shards.root, "manifest.json")
    manifest = json.load(open(path))
    manifest["total"] = 51
    json.dump(manifest, open(path, "w"))
    with pytest.raises(ShardError, match="rows sum to 50 but total=51"):
        read_manifest(shards.root)


def test_unknown_output_is_a_config_error(shards):
    with pytest.raises(ConfigError, match="output='numpy' is not supported"):
        SyntheticShardDataset(shards.root, output="numpy")
