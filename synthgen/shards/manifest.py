"""``manifest.json``: written last by ``synthgen sample``, read by every consumer; one reader, one type.

The manifest is the source of truth for which shards exist and for the class order; a folder
without one is an interrupted run and is refused. Its keys (``synthgen.sample.out_files`` fills them):

    manifest_version, synthgen_version, created (UTC ISO 8601)
    total                  N, the number of samples (sample_ids 0..N-1)
    per_class              {class name: exact count}; class_counts: the same as a list by label index
    class_names            label index -> name (the checkpoint's order)
    label_dirs             {class name: folder under png/} (filesystem-safe names, e.g. T-shirt_top)
    image_shape            [C, H, W]
    format                 one of FORMATS (parquet | png | both)
    images_per_shard, num_shards
    shards                 [{index, file, rows, sample_id_start, sample_id_end, bytes, sha256,
                             png_index?: {file, bytes, sha256}, filter?}] -- ``file`` is the primary
                           handler's (the Parquet shard, or the PNG index when format is png)
    checkpoint, seed, plan_digest, plan, config, filter?   (see synthgen.sample.out_files)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from synthgen.errors import ShardError, StorageError
from synthgen.shards.formats import FORMATS, HANDLERS, format_parts
from synthgen.shards.layout import MANIFEST_FILE, RERUN, is_relative
from synthgen.shards.types import FileRef, ShardInfo, ShardManifest
from synthgen.storage import Location

MANIFEST_VERSION = 1
IMAGEFOLDER_NOTE = (
    "torchvision ImageFolder numbers classes by sorted folder name, which can differ from synthgen's label "
    "order; map ImageFolder's class_to_idx through label_dirs to recover synthgen labels"
)


def open_dataset(root: str | os.PathLike[str] | Location) -> Location:
    """The dataset folder ``root`` (local path or pyarrow URI) as a Location.

    Raises:
        ShardError: the URI's filesystem cannot be opened (unknown scheme, missing credentials).
    """
    if isinstance(root, Location):
        return root
    try:
        return Location(os.fspath(root))
    except StorageError as exc:
        raise ShardError(f"cannot open shard location {os.fspath(root)!r}: {exc}") from exc


def write_manifest(out: Location, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` atomically (the last file of a run: its presence means complete)."""
    out.write_bytes(MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode())


def _shard_info(rec: Mapping[str, Any], parts: tuple[str, ...]) -> ShardInfo:
    refs = {}
    for name in parts:
        key = HANDLERS[name].record_key
        # The primary (last) handler's file is the record's own; any other must be under its key.
        own = name == parts[-1] and not (key and key in rec)
        refs[name] = FileRef.from_record(rec if own else rec[key])
    stats = rec.get("filter")
    return ShardInfo(
        int(rec["index"]),
        int(rec["rows"]),
        int(rec["sample_id_start"]),
        int(rec["sample_id_end"]),
        str(rec["file"]),
        int(rec.get("bytes", -1)),
        str(rec.get("sha256", "")),
        refs,
        {str(k): int(v) for k, v in stats.items()} if isinstance(stats, dict) else None,
    )


def _parse(raw: Any, where: str) -> ShardManifest:
    try:
        fmt = str(raw.get("format", "parquet"))
        parts = format_parts(fmt) if fmt in FORMATS else ()
        return ShardManifest(
            root=where,
            total=int(raw["total"]),
            class_names=tuple(str(c) for c in raw["class_names"]),
            image_shape=tuple(int(d) for d in raw["image_shape"]),  # type: ignore[arg-type]
            shards=tuple(_shard_info(s, parts) for s in raw["shards"]),
            per_class={str(k): int(v) for k, v in raw.get("per_class", {}).items()},
            format=fmt,
            label_dirs={str(k): str(v) for k, v in raw.get("label_dirs", {}).items()},
            raw=raw,
            parts=parts,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ShardError(f"{where}/{MANIFEST_FILE} is malformed ({type(e).__name__}: {e}); {RERUN}") from e


def manifest_problems(m: ShardManifest) -> list[str]:
    """Inconsistencies of a parsed manifest (empty when it is consistent)."""
    problems = []
    if len(m.image_shape) != 3 or m.image_shape[0] not in (1, 3) or min(m.image_shape) < 1:
        problems.append(f"image_shape={list(m.image_shape)} is not [C, H, W] with C in (1, 3)")
    if not m.class_names or len(set(m.class_names)) != len(m.class_names):
        problems.append(f"class_names={list(m.class_names)} must be non-empty and unique")
    if sum(s.rows for s in m.shards) != m.total:
        problems.append(f"shard rows sum to {sum(s.rows for s in m.shards)} but total={m.total}")
    if m.format not in FORMATS:
        problems.append(f"format={m.format!r} is not one of {list(FORMATS)}")
    if "png" in m.parts and sorted(m.label_dirs) != sorted(m.class_names):
        problems.append(f"format {m.format} needs label_dirs for every class name")
    # Paths are relative to the root; refuse anything that escapes it.
    files = [s.file for s in m.shards] + [ref.file for s in m.shards for ref in s.parts.values()]
    problems += [f"shard path {f!r} is not relative to the root" for f in dict.fromkeys(files) if not is_relative(f)]
    return problems


def read_manifest(root: str | os.PathLike[str] | Location, check: bool = True) -> ShardManifest:
    """Read ``<root>/manifest.json``.

    Args:
        root: dataset folder or pyarrow URI (``s3://``, ``gs://``, ``file://``), or a Location.
        check: also refuse an inconsistent manifest (``synthgen verify`` passes False and reports
            the inconsistencies itself).

    Returns:
        The parsed ShardManifest.

    Raises:
        ShardError: the manifest is missing (interrupted run), unreadable, malformed or inconsistent.
    """
    out = open_dataset(root)
    where = out.display()
    if not out.exists(MANIFEST_FILE):
        raise ShardError(
            f"{where}: {MANIFEST_FILE} not found - the shard dataset is incomplete (the manifest is written "
            f"last, so sampling was interrupted) or this is not a synthgen sample folder; {RERUN}"
        )
    try:
        raw = json.loads(out.read_bytes(MANIFEST_FILE).decode("utf-8"))
    except (ValueError, OSError) as e:
        raise ShardError(f"{where}/{MANIFEST_FILE} is not valid JSON ({e}); {RERUN}") from e
    if not isinstance(raw, dict):
        raise ShardError(f"{where}/{MANIFEST_FILE} is not a synthgen manifest (not a JSON object); {RERUN}")
    manifest = _parse(raw, where)
    problems = manifest_problems(manifest) if check else []
    if problems:
        raise ShardError(f"{where}/{MANIFEST_FILE} is inconsistent: {'; '.join(problems)}; {RERUN}")
    return manifest
