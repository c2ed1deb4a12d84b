"""The shard format opens unchanged in Hugging Face ``datasets``, pandas and torchvision ImageFolder."""

from __future__ import annotations

import glob
import io
import json
import os

import numpy as np
import pytest
from PIL import Image
from shard_data import write_shards


@pytest.fixture
def shards(tmp_path):
    return write_shards(tmp_path / "out", n=30, rows_per_shard=12, row_group_size=5, seed=3)


def test_hugging_face_datasets_decodes_images_and_class_labels(shards, tmp_path, monkeypatch):
    # Offline with a private cache: local parquet files need no network.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    import datasets  # the test extra: pip install -e '.[test]'

    files = sorted(glob.glob(os.path.join(shards.root, "parquet", "*.parquet")))
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf_cache"))
    assert len(ds) == 30
    assert ds.features["label"].names == list(shards.class_names)  # ClassLabel from schema metadata
    assert isinstance(ds.features["image"], datasets.Image)
    for i in (0, 11, 12, 29):
        row = ds[i]
        assert isinstance(row["image"], Image.Image)  # decoded, no cast_column needed
        assert row["sample_id"] == shards.sample_ids[i] and row["label"] == shards.labels[i]
        np.testing.assert_array_equal(np.asarray(row["image"]), shards.images[i, 0])


def test_pandas_reads_the_shards(shards):
    import pandas as pd  # the test extra

    df = pd.concat([pd.read_parquet(os.path.join(shards.root, f)) for f in shards.shard_files], ignore_index=True)
    assert list(df.columns) == ["sample_id", "label", "label_name", "image"]
    np.testing.assert_array_equal(df["sample_id"].to_numpy(), shards.sample_ids)
    np.testing.assert_array_equal(df["label"].to_numpy(), shards.labels)
    assert df["label_name"].tolist() == [shards.class_names[k] for k in shards.labels]
    first = np.asarray(Image.open(io.BytesIO(df["image"][17]["bytes"])))
    np.testing.assert_array_equal(first, shards.images[17, 0])


def test_torchvision_image_folder_reads_the_png_tree(shards):
    from torchvision.datasets import ImageFolder

    ds = ImageFolder(os.path.join(shards.root, "png"))
    assert len(ds) == 30
    # ImageFolder numbers classes by sorted folder name; the manifest's label_dirs maps them back.
    label_dirs = json.load(open(os.path.join(shards.root, "manifest.json")))["label_dirs"]
    folder_to_label = {label_dirs[name]: k for k, name in enumerate(shards.class_names)}
    assert "T-shirt_top" in ds.classes
    for path, folder_idx in ds.samples:
        sample_id = int(os.path.splitext(os.path.basename(path))[0])
        assert folder_to_label[ds.classes[folder_idx]] == shards.labels[sample_id]
        assert os.path.basename(path) == f"{sample_id:012d}.png"
    img, _ = ds[0]
    sample_id = int(os.path.splitext(os.path.basename(ds.samples[0][0]))[0])
    np.testing.assert_array_equal(np.asarray(img.convert("L")), shards.images[sample_id, 0])
