"""Test helper: write a small synthetic-shard folder in the exact synthgen shard format.

The real writer lives in ``synthgen.sample``; this helper writes the same on-disk contract so the
consumer-side loaders (``synthgen.data.shards`` / ``mix`` / ``ray_reader``) can be tested on their own:

    OUT/parquet/shard-000000.parquet   sample_id int64, label int64, label_name string,
                                       image struct<bytes: binary (PNG), path: string>,
                                       schema metadata b"huggingface" and b"synthgen"
    OUT/png/<safe label_name>/<sample_id:012d>.png, listed by OUT/png_index/shard-000000.json
    OUT/manifest.json                  written last (format, label_dirs, shards[...])

``fmt`` is the sampler's ``format``: "parquet", "png" (the shard ``file`` is then the PNG index)
or "both" (the default here, so one fixture serves every reader).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


@dataclass(frozen=True)
class FakeShards:
    root: str  # the OUT folder
    images: np.ndarray  # uint8 [N, C, H, W], in sample_id order
    labels: np.ndarray  # int64 [N]
    sample_ids: np.ndarray  # int64 [N], 0..N-1 + id_offset
    class_names: tuple[str, ...]  # index -> class name (manifest order)
    shard_files: tuple[str, ...]  # relative paths of the parquet shards


def safe_name(name: str) -> str:
    """Folder-safe class name: "T-shirt/top" -> "T-shirt_top"."""
    return re.sub(r"[^A-Za-z0-9 ._-]", "_", name)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode one uint8 [C, H, W] image as PNG (mode L for C=1, RGB for C=3)."""
    c = image.shape[0]
    pil = Image.fromarray(image[0] if c == 1 else image.transpose(1, 2, 0), mode="L" if c == 1 else "RGB")
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def hf_features(class_names: tuple[str, ...]) -> dict:
    """The Hugging Face ``datasets`` features block stored under schema metadata b"huggingface"."""
    return {
        "sample_id": {"dtype": "int64", "_type": "Value"},
        "label": {"names": list(class_names), "_type": "ClassLabel"},
        "label_name": {"dtype": "string", "_type": "Value"},
        "image": {"_type": "Image"},
    }


def _write(out: str, rel: str, data: bytes) -> dict:
    """Write ``out/rel``; return its manifest record {file, bytes, sha256}."""
    os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
    with open(os.path.join(out, rel), "wb") as f:
        f.write(data)
    return {"file": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def write_fake_shards(
    out: str | os.PathLike[str],
    n: int = 50,
    class_names: tuple[str, ...] = FASHION_CLASSES,
    image_shape: tuple[int, int, int] = (1, 28, 28),
    rows_per_shard: int = 20,
    row_group_size: int = 8,
    seed: int = 0,
    id_offset: int = 0,
    fmt: str = "both",
    write_manifest: bool = True,
) -> FakeShards:
    """Write ``n`` random labelled images as shards + PNG tree + manifest under ``out``.

    Args:
        out: output folder (created).
        n: number of samples.
        class_names: manifest class order.
        image_shape: (C, H, W), C in {1, 3}.
        rows_per_shard: rows per parquet file (the last one may be shorter).
        row_group_size: rows per parquet row group (small, so tests cross row-group borders).
        seed: RNG seed for pixels and labels.
        id_offset: first sample_id.
        fmt: "parquet", "png" or "both" (which of the Parquet shards / ``png/`` tree to write).
        write_manifest: write ``manifest.json`` (False simulates an interrupted run).

    Returns:
        FakeShards with the ground truth that was written.
    """
    out = os.fspath(out)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *image_shape), dtype=np.uint8)  # [N, C, H, W]
    labels = rng.integers(0, len(class_names), size=n).astype(np.int64)  # [N]
    sample_ids = np.arange(id_offset, id_offset + n, dtype=np.int64)  # [N]
    os.makedirs(out, exist_ok=True)
    schema = pa.schema(
        [
            ("sample_id", pa.int64()),
            ("label", pa.int64()),
            ("label_name", pa.string()),
            ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ],
        metadata={
            b"huggingface": json.dumps({"info": {"features": hf_features(class_names)}}).encode(),
            b"synthgen": json.dumps({"version": "0.1.0", "checkpoint_digest": "0" * 64, "seed": seed}).encode(),
        },
    )
    label_dirs = {name: safe_name(name) for name in class_names}
    shards = []
    for k, start in enumerate(range(0, n, rows_per_shard)):
        stop = min(start + rows_per_shard, n)
        names = [class_names[int(labels[i])] for i in range(start, stop)]
        pngs = [png_bytes(images[i]) for i in range(start, stop)]
        files = [f"{int(sample_ids[i]):012d}.png" for i in range(start, stop)]
        record = {"index": k, "rows": stop - start, "sample_id_start": int(sample_ids[start]),
                  "sample_id_end": int(sample_ids[stop - 1]) + 1}
        if fmt in ("png", "both"):
            listed = []
            for name, f, b in zip(names, files, pngs):
                rel = f"png/{label_dirs[name]}/{f}"
                listed.append([rel, len(b), hashlib.sha256(b).hexdigest()])
                _write(out, rel, b)
            index = {"shard": k, "sample_id_start": record["sample_id_start"],
                     "sample_id_end": record["sample_id_end"], "plan_digest": "0" * 64, "files": listed}
            record["png_index"] = _write(out, f"png_index/shard-{k:06d}.json", json.dumps(index).encode())
        if fmt in ("parquet", "both"):
            table = pa.table(
                {
                    "sample_id": pa.array(sample_ids[start:stop], pa.int64()),
                    "label": pa.array(labels[start:stop], pa.int64()),
                    "label_name": pa.array(names, pa.string()),
                    "image": pa.array([{"bytes": b, "path": f} for b, f in zip(pngs, files)], schema.field("image").type),
                },
                schema=schema,
            )
            rel = f"parquet/shard-{k:06d}.parquet"
            os.makedirs(os.path.join(out, "parquet"), exist_ok=True)
            pq.write_table(table, os.path.join(out, rel), row_group_size=row_group_size)
            data = open(os.path.join(out, rel), "rb").read()
            record.update(file=rel, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        else:
            record.update(record["png_index"])
        shards.append(record)
    if write_manifest:
        manifest = {
            "total": n,
            "per_class": {name: int((labels == i).sum()) for i, name in enumerate(class_names)},
            "class_names": list(class_names),
            "label_dirs": label_dirs,
            "image_shape": list(image_shape),
            "format": fmt,
            "shards": shards,
            "checkpoint": {"digest": "0" * 64, "step": 0},
            "seed": seed,
            "config": {},
            "synthgen_version": "0.1.0",
            "created": "2025-01-01T00:00:00Z",
        }
        with open(os.path.join(out, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
    return FakeShards(
        root=out,
        images=images,
        labels=labels,
        sample_ids=sample_ids,
        class_names=tuple(class_names),
        shard_files=tuple(s["file"] for s in shards),
    )
