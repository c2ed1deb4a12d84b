"""Shard writers: PNG encoding, Parquet shards and PNG trees, all through pyarrow filesystems.

Every file is written to a temporary name in its final folder (``.NAME.tmp-<hex>``) and moved
over the final name when complete, so a reader never sees a partial file. ``synthgen.storage.Location`` hides
whether OUT is a local folder or a URI (``file://``, ``s3://``, ``gs://``): on object stores a
move is copy + delete and the final key appears whole, which keeps the same guarantee.

Parquet columns: ``sample_id`` int64, ``label`` int64, ``label_name`` string,
``image`` struct<bytes: binary (PNG), path: string>. Schema metadata ``b"huggingface"`` holds the
Hugging Face ``datasets`` features (``Image``, ``ClassLabel``) so ``load_dataset("parquet", ...)``
decodes images without a cast; ``b"synthgen"`` holds version, checkpoint digest, seed, plan digest
and the shard's id range.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from synthgen.sample.plan import SamplePlan, Shard
from synthgen.storage import Location, sha256_hex

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode one uint8 image [C, H, W] (C = 1 -> mode L, C = 3 -> RGB) as PNG with fixed settings."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected uint8 [C, H, W] with C in (1, 3), got {image.dtype} {image.shape}")
    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)  # [H, W] or [H, W, 3]
    buf = io.BytesIO()
    # No optimize pass and no time chunk: same pixels + same zlib -> same bytes.
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=compress_level, optimize=False)
    return buf.getvalue()


def encode_batch(images: np.ndarray, compress_level: int = 6) -> list[bytes]:
    """Encode uint8 [N, C, H, W] into N PNG byte strings."""
    return [encode_png(img, compress_level) for img in images]


def png_name(sample_id: int) -> str:
    """File name of a sample: its id zero-padded to 12 digits, e.g. ``000000000042.png``."""
    return f"{sample_id:012d}.png"


def hf_features(class_names: Sequence[str]) -> dict[str, Any]:
    """Hugging Face ``datasets`` features of the Parquet columns."""
    return {
        "sample_id": {"dtype": "int64", "_type": "Value"},
        "label": {"names": list(class_names), "_type": "ClassLabel"},
        "label_name": {"dtype": "string", "_type": "Value"},
        "image": {"_type": "Image"},
    }


def parquet_schema(class_names: Sequence[str], synthgen_meta: dict[str, Any]) -> pa.Schema:
    """The shard schema with its ``huggingface`` and ``synthgen`` metadata."""
    return pa.schema(
        [("sample_id", pa.int64()), ("label", pa.int64()), ("label_name", pa.string()), ("image", IMAGE_TYPE)],
        metadata={
            b"huggingface": json.dumps({"info": {"features": hf_features(class_names)}}).encode(),
            b"synthgen": json.dumps(synthgen_meta, sort_keys=True).encode(),
        },
    )


def shard_metadata(plan: SamplePlan, shard: Shard, version: str,
                   filter_stats: dict[str, int] | None = None) -> dict[str, Any]:
    """The ``b"synthgen"`` metadata of one shard (no timestamps: bytes stay reproducible)."""
    meta = {
        "version": version,
        "checkpoint_digest": plan.checkpoint_digest,
        "seed": plan.seed,
        "plan_digest": plan.digest(),
        "shard": shard.index,
        "sample_id_start": shard.start,
        "sample_id_end": shard.end,
    }
    if filter_stats is not None:  # judge-filtered shards: latents drawn, images kept below the threshold
        meta["filter"] = filter_stats
    return meta


def parquet_bytes(plan: SamplePlan, shard: Shard, ids: np.ndarray, labels: np.ndarray,
                  pngs: Sequence[bytes], version: str, filter_stats: dict[str, int] | None = None) -> bytes:
    """Serialise one shard's rows ([rows] ids / labels / PNGs, in id order) to Parquet bytes."""
    names = [plan.class_names[c] for c in labels.tolist()]
    image = pa.StructArray.from_arrays(
        [pa.array(pngs, pa.binary()), pa.array([png_name(i) for i in ids.tolist()], pa.string())],
        fields=list(IMAGE_TYPE),
    )
    schema = parquet_schema(plan.class_names, shard_metadata(plan, shard, version, filter_stats))
    table = pa.Table.from_arrays(
        [pa.array(ids, pa.int64()), pa.array(labels, pa.int64()), pa.array(names, pa.string()), image], schema=schema
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=plan.row_group_size)
    return sink.getvalue().to_pybytes()


def write_shard(out: Location, plan: SamplePlan, shard: Shard, ids: np.ndarray, labels: np.ndarray,
                pngs: Sequence[bytes], version: str, filter_stats: dict[str, int] | None = None) -> dict[str, Any]:
    """Write one complete shard (Parquet file and/or PNG files + PNG index), each file atomically.

    Args:
        out: the output folder.
        plan: the dataset plan (format, class names, folders, row groups).
        shard: which shard; ``ids`` must equal ``range(shard.start, shard.end)``.
        ids, labels: int64 [rows]; pngs: rows PNG byte strings, in id order.
        version: synthgen version for the metadata.
        filter_stats: judge-filtered shards: {"candidates", "below_threshold"}, kept in the shard's
            metadata (so a resumed run can still total them) and in its record.

    Returns:
        The shard's manifest record (file, rows, id range, bytes, sha256, png_index, filter).

    Raises:
        ValueError: rows that do not match the shard (a bug upstream, never silently written).
    """
    if ids.tolist() != list(range(shard.start, shard.end)) or len(labels) != shard.rows or len(pngs) != shard.rows:
        raise ValueError(f"{shard.name}: got {len(ids)} rows that are not sample_ids [{shard.start}, {shard.end})")
    record: dict[str, Any] = {"index": shard.index, "rows": shard.rows,
                              "sample_id_start": shard.start, "sample_id_end": shard.end}
    if plan.writes_png:
        record["png_index"] = _write_png_tree(out, plan, shard, ids, labels, pngs, filter_stats)
    if plan.writes_parquet:
        data = parquet_bytes(plan, shard, ids, labels, pngs, version, filter_stats)
        out.write_bytes(shard.parquet_file, data)
        record.update(file=shard.parquet_file, bytes=len(data), sha256=sha256_hex(data))
    else:
        record.update(file=record["png_index"]["file"], bytes=record["png_index"]["bytes"],
                      sha256=record["png_index"]["sha256"])
    if filter_stats is not None:
        record["filter"] = filter_stats
    return record


def _write_png_tree(out: Location, plan: SamplePlan, shard: Shard, ids: np.ndarray, labels: np.ndarray,
                    pngs: Sequence[bytes], filter_stats: dict[str, int] | None = None) -> dict[str, Any]:
    """Write ``png/<label dir>/<id>.png`` files, then the shard's index listing them (the commit)."""
    files = []
    for sample_id, label, data in zip(ids.tolist(), labels.tolist(), pngs):
        rel = f"png/{plan.label_dirs[label]}/{png_name(sample_id)}"
        out.write_bytes(rel, data)
        files.append([rel, len(data), sha256_hex(data)])
    index = {"shard": shard.index, "sample_id_start": shard.start, "sample_id_end": shard.end,
             "plan_digest": plan.digest(), "files": files}
    if filter_stats is not None:
        index["filter"] = filter_stats
    data = json.dumps(index, separators=(",", ":")).encode()
    out.write_bytes(shard.png_index_file, data)
    return {"file": shard.png_index_file, "bytes": len(data), "sha256": sha256_hex(data)}


def read_parquet_meta(out: Location, rel: str) -> tuple[int, dict[str, Any]]:
    """(num_rows, synthgen metadata) of a Parquet shard from its footer only.

    Raises:
        OSError / pyarrow.ArrowInvalid: the file is missing or not Parquet.
    """
    with out.fs.open_input_file(out.path(rel)) as fh:
        meta = pq.ParquetFile(fh).metadata
        kv = meta.metadata or {}
        return meta.num_rows, json.loads(kv.get(b"synthgen", b"{}"))
