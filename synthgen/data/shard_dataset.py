"""Consumer side of synthetic shards: a torch map-style ``Dataset`` and an all-in-memory loader.

A shard folder (written by ``synthgen sample``; local path or pyarrow URI such as ``s3://b/out``,
``gs://b/out``, ``file:///data/out``) holds::

    manifest.json                     written last: total, class_names, image_shape, shards[...]
    parquet/shard-000000.parquet      sample_id, label, label_name, image{bytes (PNG), path}
    png/<class>/<sample_id:012d>.png  the same images as an ImageFolder tree (format png or both)

The manifest is the source of truth for which shards exist and for the class order; a folder
without one is an interrupted run and is refused (see ``synthgen.shards``). Typical use::

    ds = SyntheticShardDataset("runs/x/samples", transform=v2.Compose([...]))
    loader = DataLoader(ds, batch_size=128, shuffle=True, num_workers=4)
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from synthgen.data.base import ImageData
from synthgen.data.shard_index import scan_shards
from synthgen.errors import ConfigError
from synthgen.shards import ShardManifest, decode_png, pil_to_chw, read_manifest
from synthgen.shards.integrity import check_labels, check_shard_files
from synthgen.shards.manifest import open_dataset
from synthgen.shards.parquet import open_parquet, png_column
from synthgen.shards.png import read_file

OUTPUTS = ("pil", "tensor")  # SyntheticShardDataset(output=...)

__all__ = ["OUTPUTS", "SyntheticShardDataset", "load_shard_arrays", "load_source_ids"]


def transformed(dataset: Any, image: Any, label: int) -> tuple[Any, Any]:
    """``(image, label)`` through the dataset's ``transform`` and ``target_transform`` (torchvision's: None = as is)."""
    if dataset.transform is not None:
        image = dataset.transform(image)
    return image, (label if dataset.target_transform is None else dataset.target_transform(label))


class SyntheticShardDataset(torch.utils.data.Dataset):
    """Map-style dataset over a synthgen shard folder, returning ``(image, label)`` like torchvision.

    Index ``i`` is the i-th row in manifest order (shards in sample_id order). Labels are read once
    at construction (no image decoding); images are read per Parquet row group on demand (or per
    PNG file for format "png"), and each DataLoader worker opens its own files lazily (nothing open
    is pickled or shared across fork).

    Args:
        root: shard folder or pyarrow URI (``s3://``, ``gs://``, ``file://``).
        transform: callable applied to the image (PIL image, or tensor with ``output="tensor"``).
        target_transform: callable applied to the int label.
        output: "pil" -> PIL image (mode "L" or "RGB"); "tensor" -> uint8 tensor [C, H, W]
            (values 0..255; use ``v2.ToDtype(torch.float32, scale=True)`` for [0, 1] floats).
        cache_bytes: per-worker budget of cached PNG bytes (whole row groups, LRU).

    Attributes:
        classes: class names in label order; class_to_idx: name -> label;
        targets: int64 [N] labels; sample_ids: int64 [N]; manifest: the parsed ShardManifest;
        source_ids: int64 [N] index of the real image each row varies (datasets sampled ``--around``), for
        grouped cross-validation (e.g. sklearn's ``GroupKFold(groups=ds.source_ids)`` keeps the variations of
        one real image in one fold); None for prior samples, which have no source image.

    Raises:
        ShardError: missing manifest or shard, or inconsistent counts.
        ConfigError: unknown ``output``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        output: str = "pil",
        cache_bytes: int = 256 * 2**20,
    ) -> None:
        if output not in OUTPUTS:
            raise ConfigError(f"output={output!r} is not supported; choose one of {list(OUTPUTS)}")
        self.root = os.fspath(root)
        self.transform = transform
        self.target_transform = target_transform
        self.output = output
        self.cache_bytes = int(cache_bytes)
        self.manifest = read_manifest(self.root)
        self.classes: list[str] = list(self.manifest.class_names)
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}
        out = open_dataset(self.root)
        check_shard_files(self.manifest, out)
        self._index = scan_shards(self.manifest, out)
        self.sample_ids: np.ndarray = self._index.sample_ids  # int64 [N]
        self.targets: np.ndarray = self._index.labels  # int64 [N], read without decoding any image
        self.source_ids: np.ndarray | None = self._index.source_ids  # int64 [N] (--around) or None
        rows = np.array([s.rows for s in self.manifest.shards], dtype=np.int64)
        self._shard_starts = np.concatenate([[0], np.cumsum(rows)])  # [S + 1] global row offsets
        self._local: _WorkerState | None = None  # opened lazily, per process

    def __len__(self) -> int:
        return int(self.manifest.total)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """Return ``(image, label)`` of row ``index`` (negative indices count from the end)."""
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        img = self._image(index)
        image: Any = img if self.output == "pil" else torch.from_numpy(pil_to_chw(img))  # [C, H, W]
        return transformed(self, image, int(self.targets[index]))

    def _image(self, index: int) -> Image.Image:
        where = f"{self.root} sample_id={int(self.sample_ids[index])}"
        if self._index.png_files:  # format png: one file per image
            state = self._state()
            data = read_file(state.out, self._index.png_files[index])
            return decode_png(data, self.manifest.image_shape, where)
        shard = int(np.searchsorted(self._shard_starts, index, side="right")) - 1
        row = index - int(self._shard_starts[shard])
        starts = self._index.rg_starts[shard]  # [G + 1] row-group offsets within the shard
        rg = int(np.searchsorted(starts, row, side="right")) - 1
        pngs = self._state().row_group(self.manifest, shard, rg)
        return decode_png(pngs[row - int(starts[rg])].as_py(), self.manifest.image_shape, where)

    def _state(self) -> _WorkerState:
        # A forked DataLoader worker inherits the parent's object: re-open instead of sharing handles.
        if self._local is None or self._local.pid != os.getpid():
            self._local = _WorkerState(self.root, self.cache_bytes)
        return self._local

    def close(self) -> None:
        """Release open files and cached bytes (they are reopened on the next access)."""
        self._local = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_local"] = None  # never pickle open handles or caches
        return state

    def __repr__(self) -> str:
        lines = [
            f"{type(self).__name__}",
            f"    Number of datapoints: {len(self)}",
            f"    Root location: {self.root}",
            f"    Classes: {len(self.classes)}, image shape (C, H, W): {self.manifest.image_shape}",
            f"    Output: {self.output}",
        ]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        return "\n".join(lines)


class _WorkerState:
    """Per-process open parquet files and an LRU cache of row groups' PNG bytes."""

    def __init__(self, root: str, cache_bytes: int, max_open: int = 8) -> None:
        self.pid = os.getpid()
        self.out = open_dataset(root)
        self.cache_bytes = cache_bytes
        self.max_open = max_open
        self.files: OrderedDict[int, pq.ParquetFile] = OrderedDict()
        self.cache: OrderedDict[tuple[int, int], pa.Array] = OrderedDict()
        self.cached = 0  # bytes held in self.cache

    def row_group(self, manifest: ShardManifest, shard: int, rg: int) -> pa.Array:
        """The PNG bytes of one row group of one Parquet shard (cached)."""
        key = (shard, rg)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        pngs = png_column(self._file(manifest, shard).read_row_group(rg, columns=["image"]))
        self.cache[key] = pngs
        self.cached += pngs.nbytes
        while self.cached > self.cache_bytes and len(self.cache) > 1:
            _, old = self.cache.popitem(last=False)
            self.cached -= old.nbytes
        return pngs

    def _file(self, manifest: ShardManifest, shard: int) -> pq.ParquetFile:
        if shard in self.files:
            self.files.move_to_end(shard)
            return self.files[shard]
        pf = open_parquet(self.out, manifest.shards[shard])
        self.files[shard] = pf
        if len(self.files) > self.max_open:
            self.files.popitem(last=False)  # closed when garbage-collected
        return pf


def load_shard_arrays(root: str | os.PathLike[str], limit: int | None = None) -> ImageData:
    """Decode a whole shard folder (or its first ``limit`` rows) into memory.

    Args:
        root: shard folder or pyarrow URI.
        limit: decode only the first ``limit`` rows in manifest order (None = all).

    Returns:
        ImageData(name="synthetic", images uint8 [N, C, H, W], labels int64 [N], class_names).

    Raises:
        ShardError: missing manifest or shard, inconsistent counts, or a corrupt image.
    """
    out = open_dataset(root)
    manifest = read_manifest(out)
    check_shard_files(manifest, out)
    n = manifest.total if limit is None else max(0, min(int(limit), manifest.total))
    images = np.empty((n, *manifest.image_shape), dtype=np.uint8)  # [N, C, H, W]
    if not manifest.has_parquet:  # format png: one file per image
        index = scan_shards(manifest, out)
        for i, rel in enumerate(index.png_files[:n]):
            data = read_file(out, rel)
            images[i] = pil_to_chw(decode_png(data, manifest.image_shape, f"{manifest.root}/{rel}"))
        return ImageData("synthetic", images, index.labels[:n].copy(), manifest.class_names)
    labels = np.empty(n, dtype=np.int64)  # [N]
    i = 0
    for shard in manifest.shards:
        if i >= n:
            break
        pf = open_parquet(out, shard)
        # Stream in record batches: memory stays at one batch of PNG bytes besides the output array.
        for batch in pf.iter_batches(batch_size=1024, columns=["sample_id", "label", "image"]):
            table = pa.Table.from_batches([batch]).slice(0, n - i)
            pngs = png_column(table)
            ids = table.column("sample_id").to_numpy()
            labels[i : i + len(table)] = table.column("label").to_numpy()
            for j in range(len(table)):
                where = f"{manifest.root}/{shard.file} sample_id={int(ids[j])}"
                images[i + j] = pil_to_chw(decode_png(pngs[j].as_py(), manifest.image_shape, where))
            i += len(table)
            if i >= n:
                break
    if n == manifest.total:
        check_labels(manifest, labels)
    return ImageData(name="synthetic", images=images, labels=labels, class_names=manifest.class_names)


def load_source_ids(root: str | os.PathLike[str]) -> np.ndarray | None:
    """The ``source_id`` of every row in manifest order (the same order as ``load_shard_arrays``), no image decoded.

    Args:
        root: shard folder or pyarrow URI.

    Returns:
        int64 [N]: the index of the real image each row varies, for a dataset sampled ``--around`` real images
        (group by it to keep one real image's variations in one cross-validation fold); None for prior samples.

    Raises:
        ShardError: missing manifest or shard, or inconsistent counts.
    """
    out = open_dataset(root)
    manifest = read_manifest(out)
    check_shard_files(manifest, out)
    return scan_shards(manifest, out).source_ids
