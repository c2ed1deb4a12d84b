"""Read a shard folder's manifest and index its rows (ids, labels, where each image lives).

Shared by the torch dataset (``shards.py``) and the Ray Data reader (``ray_reader.py``). The folder
is a local path or a pyarrow URI (``s3://``, ``gs://``, ``file://``). ``manifest.json`` is the
source of truth for which shards exist and the class order; a folder without one is an
interrupted ``synthgen sample`` run and is refused.

Formats (manifest key ``format``; absent means parquet): "parquet" and "both" are read from the
Parquet shards; "png" (no Parquet) from the ``png/<class folder>/<id>.png`` files listed by each
shard's ``png_index/shard-NNNNNN.json``, with labels from the manifest's ``label_dirs``.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from PIL import Image

from synthgen.errors import ShardError

MANIFEST_NAME = "manifest.json"
FORMATS = ("parquet", "png", "both")
REQUIRED_COLUMNS = ("sample_id", "label", "image")
RERUN = "re-run `synthgen sample` into this folder"


@dataclass(frozen=True)
class ShardInfo:
    file: str  # path relative to the root: the Parquet shard, or the PNG index when format is png
    rows: int  # rows in this shard
    bytes: int  # file size in bytes (-1 = not recorded)
    sha256: str  # hex digest of the file ("" = not recorded)


@dataclass(frozen=True)
class ShardManifest:
    root: str  # the folder or URI the manifest was read from
    total: int  # rows over all shards
    class_names: tuple[str, ...]  # label index -> class name (the class order)
    image_shape: tuple[int, int, int]  # (C, H, W)
    shards: tuple[ShardInfo, ...]  # in sample_id order
    per_class: dict[str, int]  # class name -> row count
    format: str  # parquet | png | both
    label_dirs: dict[str, str]  # class name -> folder under png/ (e.g. "T-shirt/top" -> "T-shirt_top")
    raw: dict[str, Any]  # the whole manifest (checkpoint, seed, config, synthgen_version, created)

    @property
    def has_parquet(self) -> bool:
        return self.format in ("parquet", "both")


@dataclass(frozen=True)
class ShardIndex:
    sample_ids: np.ndarray  # int64 [N], manifest order
    labels: np.ndarray  # int64 [N]
    rg_starts: tuple[np.ndarray, ...]  # parquet: per shard int64 [G + 1] row-group offsets; png: ()
    png_files: tuple[str, ...]  # png format: [N] paths relative to the root; parquet: ()


def resolve_root(root: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """Map a local folder or pyarrow URI to ``(filesystem, base path)``.

    Raises:
        ShardError: the URI's filesystem cannot be opened (unknown scheme, missing credentials).
    """
    text = os.fspath(root)
    if "://" not in text:
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(text))
    try:
        fs, base = pafs.FileSystem.from_uri(text)
    except (pa.ArrowException, ValueError, OSError) as e:
        raise ShardError(f"cannot open shard location {text!r}: {e}; check the URI scheme and credentials") from e
    return fs, base.rstrip("/")


def join_path(base: str, rel: str) -> str:
    """``base/rel`` for any pyarrow filesystem (always "/" separators)."""
    return f"{base.rstrip('/')}/{rel}"


def _is_relative(path: str) -> bool:
    return not (path.startswith("/") or ".." in path.split("/") or "://" in path)


def read_manifest(root: str | os.PathLike[str]) -> ShardManifest:
    """Read and check ``<root>/manifest.json``.

    Raises:
        ShardError: the manifest is missing (interrupted run), unreadable, or inconsistent.
    """
    fs, base = resolve_root(root)
    path = join_path(base, MANIFEST_NAME)
    where = os.fspath(root)
    if fs.get_file_info(path).type != pafs.FileType.File:
        raise ShardError(
            f"{where}: {MANIFEST_NAME} not found - the shard dataset is incomplete (the manifest is written "
            f"last, so sampling was interrupted) or this is not a synthgen sample folder; {RERUN}"
        )
    try:
        with fs.open_input_stream(path) as f:
            raw = json.loads(f.read().decode("utf-8"))
        shards = tuple(
            ShardInfo(str(s["file"]), int(s["rows"]), int(s.get("bytes", -1)), str(s.get("sha256", "")))
            for s in raw["shards"]
        )
        class_names = tuple(str(c) for c in raw["class_names"])
        image_shape = tuple(int(d) for d in raw["image_shape"])
        total = int(raw["total"])
        per_class = {str(k): int(v) for k, v in raw.get("per_class", {}).items()}
        fmt = str(raw.get("format", "parquet"))
        label_dirs = {str(k): str(v) for k, v in raw.get("label_dirs", {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ShardError(f"{where}/{MANIFEST_NAME} is malformed ({type(e).__name__}: {e}); {RERUN}") from e
    problems = []
    if len(image_shape) != 3 or image_shape[0] not in (1, 3) or min(image_shape) < 1:
        problems.append(f"image_shape={list(image_shape)} is not [C, H, W] with C in (1, 3)")
    if not class_names or len(set(class_names)) != len(class_names):
        problems.append(f"class_names={list(class_names)} must be non-empty and unique")
    if sum(s.rows for s in shards) != total:
        problems.append(f"shard rows sum to {sum(s.rows for s in shards)} but total={total}")
    if fmt not in FORMATS:
        problems.append(f"format={fmt!r} is not one of {list(FORMATS)}")
    if fmt == "png" and sorted(label_dirs) != sorted(class_names):
        problems.append("format png needs label_dirs for every class name")
    # Paths are relative to the root; refuse anything that escapes it.
    problems += [f"shard path {s.file!r} is not relative to the root" for s in shards if not _is_relative(s.file)]
    if problems:
        raise ShardError(f"{where}/{MANIFEST_NAME} is inconsistent: {'; '.join(problems)}; {RERUN}")
    return ShardManifest(where, total, class_names, image_shape, shards, per_class, fmt, label_dirs, raw)  # type: ignore[arg-type]


def check_shard_files(manifest: ShardManifest, fs: pafs.FileSystem, base: str) -> None:
    """Check that every shard the manifest lists exists with the recorded size (cheap; no hashing).

    Full sha256 and pixel checks are ``synthgen verify``'s job.

    Raises:
        ShardError: a shard is missing or its size differs (truncated or replaced).
    """
    infos = fs.get_file_info([join_path(base, s.file) for s in manifest.shards])
    for shard, info in zip(manifest.shards, infos):
        if info.type != pafs.FileType.File:
            raise ShardError(f"{manifest.root}: shard {shard.file} is listed in the manifest but missing; {RERUN}")
        if shard.bytes >= 0 and info.size != shard.bytes:
            raise ShardError(
                f"{manifest.root}: shard {shard.file} is {info.size} bytes but the manifest records {shard.bytes} "
                f"(truncated or replaced); {RERUN}, or copy the folder again"
            )


def decode_png(data: bytes, image_shape: tuple[int, int, int], where: str = "") -> Image.Image:
    """Decode PNG bytes into a PIL image of mode "L" (C=1) or "RGB" (C=3), checking its size.

    Raises:
        ShardError: the bytes are not a readable image or have the wrong size.
    """
    c, h, w = image_shape
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # PIL raises several unrelated types for corrupt data
        raise ShardError(f"{where}: unreadable PNG ({e}); the shard is corrupted; {RERUN}") from e
    if img.size != (w, h):
        raise ShardError(f"{where}: image is {img.size[0]}x{img.size[1]}, manifest says {w}x{h}; {RERUN}")
    mode = "L" if c == 1 else "RGB"
    return img if img.mode == mode else img.convert(mode)


def pil_to_chw(img: Image.Image) -> np.ndarray:
    """PIL image -> uint8 [C, H, W] numpy array."""
    arr = np.array(img, dtype=np.uint8)  # [H, W] or [H, W, C]; a writable copy (torch needs one)
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def png_column(table: pa.Table) -> pa.Array:
    """The PNG ``bytes`` field of the ``image`` struct column, as one array."""
    return pc.struct_field(table.column("image").combine_chunks(), "bytes")


def read_file(manifest: ShardManifest, fs: pafs.FileSystem, base: str, rel: str) -> bytes:
    """The bytes of ``rel`` (a PNG of a format-png folder).

    Raises:
        ShardError: the file is missing or unreadable.
    """
    try:
        with fs.open_input_stream(join_path(base, rel)) as f:
            return f.read()
    except (pa.ArrowException, OSError) as e:
        raise ShardError(f"{manifest.root}: cannot read {rel} ({e}); {RERUN}") from e


def png_file_label(manifest: ShardManifest, rel: str) -> tuple[int, int]:
    """``(sample_id, label)`` of a ``png/<class folder>/<sample_id>.png`` path (relative or absolute).

    Raises:
        ShardError: the path is not in a known class folder or its name is not a sample id.
    """
    parts = rel.rstrip("/").split("/")
    by_dir = {d: manifest.class_names.index(name) for name, d in manifest.label_dirs.items()}
    try:
        return int(parts[-1].removesuffix(".png")), by_dir[parts[-2]]
    except (ValueError, KeyError, IndexError) as e:
        raise ShardError(f"{manifest.root}: {rel!r} is not png/<class folder>/<sample_id>.png; {RERUN}") from e


def open_parquet(manifest: ShardManifest, fs: pafs.FileSystem, base: str, shard: ShardInfo) -> pq.ParquetFile:
    """Open one Parquet shard and check its columns and row count against the manifest.

    Raises:
        ShardError: unreadable, missing columns, or a row count that differs from the manifest.
    """
    try:
        pf = pq.ParquetFile(fs.open_input_file(join_path(base, shard.file)))
    except (pa.ArrowException, OSError) as e:
        raise ShardError(f"{manifest.root}: cannot read shard {shard.file}: {e}; {RERUN}") from e
    missing = [c for c in REQUIRED_COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        raise ShardError(f"{manifest.root}: shard {shard.file} lacks columns {missing}; {RERUN}")
    if pf.metadata.num_rows != shard.rows:
        raise ShardError(
            f"{manifest.root}: shard {shard.file} has {pf.metadata.num_rows} rows, manifest says {shard.rows}; {RERUN}"
        )
    return pf


def read_png_index(manifest: ShardManifest, fs: pafs.FileSystem, base: str, shard: ShardInfo) -> list[str]:
    """The PNG paths (relative to the root, in sample_id order) a png-format shard index lists.

    Raises:
        ShardError: the index is unreadable or lists a different number of files than the manifest.
    """
    try:
        with fs.open_input_stream(join_path(base, shard.file)) as f:
            files = [str(entry[0]) for entry in json.loads(f.read())["files"]]
    except (ValueError, KeyError, TypeError, IndexError, OSError) as e:
        raise ShardError(f"{manifest.root}: PNG index {shard.file} is unreadable ({e}); {RERUN}") from e
    if len(files) != shard.rows or not all(_is_relative(p) for p in files):
        raise ShardError(f"{manifest.root}: PNG index {shard.file} lists {len(files)} files, manifest says {shard.rows}; {RERUN}")
    return files


def scan_shards(manifest: ShardManifest, fs: pafs.FileSystem, base: str) -> ShardIndex:
    """Index every row: sample ids, labels, and where its image lives, without reading image bytes.

    Raises:
        ShardError: unreadable shards, counts that differ from the manifest, or labels out of range.
    """
    ids, labels, rg_starts, png_files = [], [], [], []
    for shard in manifest.shards:
        if manifest.has_parquet:
            pf = open_parquet(manifest, fs, base, shard)
            table = pf.read(columns=["sample_id", "label"])
            ids.append(table.column("sample_id").to_numpy().astype(np.int64))
            labels.append(table.column("label").to_numpy().astype(np.int64))
            sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
            rg_starts.append(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
        else:
            files = read_png_index(manifest, fs, base, shard)
            pairs = np.array([png_file_label(manifest, p) for p in files], dtype=np.int64).reshape(-1, 2)
            ids.append(pairs[:, 0])
            labels.append(pairs[:, 1])
            png_files += files
    index = ShardIndex(
        sample_ids=np.concatenate(ids) if ids else np.zeros(0, np.int64),
        labels=np.concatenate(labels) if labels else np.zeros(0, np.int64),
        rg_starts=tuple(rg_starts),
        png_files=tuple(png_files),
    )
    check_labels(manifest, index.labels)
    return index


def check_labels(manifest: ShardManifest, labels: np.ndarray) -> None:
    """Labels must index class_names and match the manifest's per-class counts.

    Raises:
        ShardError: a label is out of range or the counts differ.
    """
    k = len(manifest.class_names)
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ShardError(f"{manifest.root}: labels outside [0, {k}) for class_names {list(manifest.class_names)}; {RERUN}")
    if manifest.per_class:
        counts = np.bincount(labels, minlength=k)
        found = {name: int(counts[i]) for i, name in enumerate(manifest.class_names)}
        expected = {name: manifest.per_class.get(name, 0) for name in manifest.class_names}
        if found != expected:
            raise ShardError(f"{manifest.root}: per-class counts {found} differ from the manifest's {expected}; {RERUN}")
