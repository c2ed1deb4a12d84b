"""Ray Data reader for synthetic shards: ``read_parquet`` + PNG decode into numpy, for training at scale.

    ds = read_synthetic("s3://bucket/run/samples")          # columns sample_id, label, image
    for batch in ds.iter_torch_batches(batch_size=256):     # image: uint8 [B, C, H, W]
        ...

In a Ray Train loop, pass it as ``TorchTrainer(datasets={"train": ds})`` and read it with
``ray.train.get_dataset_shard("train")``. On a multi-node cluster the root must be storage every
node can read (object storage or a shared mount): read tasks run on any node.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa
import ray.data

from synthgen.data.shard_index import scan_shards
from synthgen.errors import ConfigError
from synthgen.shards import decode_png, pil_to_chw, read_manifest
from synthgen.shards.integrity import check_shard_files
from synthgen.shards.layout import parse_png_path
from synthgen.shards.manifest import open_dataset
from synthgen.shards.parquet import png_column

LAYOUTS = ("CHW", "HWC")  # read_synthetic(layout=...)


class _PngDecoder:
    """Batch function: pyarrow table with PNG bytes -> numpy columns with uint8 images.

    Parquet shards give ``sample_id``, ``label`` and ``image`` columns; format "png" gives
    ``read_binary_files``' ``bytes`` and ``path``, whose class folder and file name carry the
    label and the sample id.
    """

    def __init__(self, image_shape: tuple[int, int, int], layout: str, label_of_dir: dict[str, int]) -> None:
        self.image_shape = image_shape
        self.layout = layout
        self.label_of_dir = label_of_dir  # png/ folder name -> label

    def __call__(self, table: pa.Table) -> dict[str, np.ndarray]:
        if "image" in table.column_names:
            pngs = png_column(table)
            ids = table.column("sample_id").to_numpy().astype(np.int64)  # [B]
            labels = table.column("label").to_numpy().astype(np.int64)  # [B]
        else:
            pngs = table.column("bytes").combine_chunks()
            parts = [parse_png_path(p) for p in table.column("path").to_pylist()]  # [(folder, sample_id)]
            ids = np.array([i for _, i in parts], dtype=np.int64)
            labels = np.array([self.label_of_dir[d] for d, _ in parts], dtype=np.int64)
        images = np.empty((len(table), *self.image_shape), dtype=np.uint8)  # [B, C, H, W]
        for i in range(len(table)):
            images[i] = pil_to_chw(decode_png(pngs[i].as_py(), self.image_shape, f"sample_id={int(ids[i])}"))
        if self.layout == "HWC":
            images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))  # [B, H, W, C]
        return {"sample_id": ids, "label": labels, "image": images}


def read_synthetic(
    root: str | os.PathLike[str],
    layout: str = "CHW",
    num_cpus: float = 0.25,
    override_num_blocks: int | None = None,
    **map_batches_kwargs: Any,
) -> ray.data.Dataset:
    """Lazily read a shard folder as a Ray Dataset with columns ``sample_id``, ``label``, ``image``.

    Row order is not guaranteed (use ``sample_id``); class names are
    ``synthgen.shards.read_manifest(root).class_names``.

    Args:
        root: shard folder or pyarrow URI (``s3://``, ``gs://``, ``file://``).
        layout: "CHW" -> image uint8 [C, H, W]; "HWC" -> uint8 [H, W, C].
        num_cpus: CPUs per read/decode task (fractional so tasks never starve beside 1-CPU actors).
        override_num_blocks: number of read blocks (None = Ray's choice).
        **map_batches_kwargs: passed to the decode ``map_batches`` (e.g. ``concurrency``). The default
            decodes each read block whole, which lets Ray fuse read + decode into one task; a
            ``batch_size`` bounds decode memory but adds a separate stage.

    Returns:
        A lazy ``ray.data.Dataset``; nothing is read until it is consumed.

    Raises:
        ShardError: missing manifest or shard (checked before any Ray task starts).
        ConfigError: unknown ``layout``.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"layout={layout!r} is not supported; choose one of {list(LAYOUTS)}")
    out = open_dataset(root)
    manifest = read_manifest(out)
    check_shard_files(manifest, out)
    if not manifest.shards:
        return ray.data.from_items([])
    label_of_dir = {d: manifest.class_names.index(name) for name, d in manifest.label_dirs.items()}
    if manifest.has_parquet:
        ds = _read_parquet_files(
            [out.path(s.file) for s in manifest.shards], out.fs, num_cpus, override_num_blocks
        ).select_columns(["sample_id", "label", "image"])  # projection pushed down to the file scan
    else:  # format png: the files the shard indexes list (no bucket listing)
        ds = ray.data.read_binary_files(
            [out.path(rel) for rel in scan_shards(manifest, out).png_files],
            filesystem=out.fs,
            include_paths=True,
            num_cpus=num_cpus,
            override_num_blocks=override_num_blocks,
        )
    decoder = _PngDecoder(manifest.image_shape, layout, label_of_dir)
    return ds.map_batches(decoder, batch_format="pyarrow", num_cpus=num_cpus, **map_batches_kwargs)


def _read_parquet_files(
    paths: list[str], fs: Any, num_cpus: float, override_num_blocks: int | None
) -> ray.data.Dataset:
    """``ray.data.read_parquet`` of the manifest's shard files through Ray Data's file-based Parquet source.

    Ray Data's default (DataSourceV2) source starts a pool of 32 footer-reading actors for every read, whatever the
    number of files: on a small node that takes several times longer than reading a few shards. The manifest already
    names every shard, so nothing needs listing; the switch is scoped to this call (the dataset keeps the plan it was
    built with).
    """
    context = ray.data.DataContext.get_current()
    previous = context.use_datasource_v2
    context.use_datasource_v2 = False
    try:
        return ray.data.read_parquet(paths, filesystem=fs, num_cpus=num_cpus, override_num_blocks=override_num_blocks)
    finally:
        context.use_datasource_v2 = previous
