"""Test helper: small shard folders written by the REAL writer (``synthgen.sample.writer`` + the manifest).

No Ray and no generator: random pixels and labels go through the same ``write_shard`` /
``build_manifest`` / ``write_manifest`` calls that ``synthgen sample``'s fleet makes, so every loader
test reads exactly the on-disk format users get. ``fmt`` is the sampler's ``format``: "parquet",
"png" or "both" (the default here, so one folder serves every reader).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from synthgen.data.idx import FASHION_MNIST_CLASSES as FASHION_CLASSES
from synthgen.sample.out_files import build_manifest, write_plan
from synthgen.sample.plan import SamplePlan
from synthgen.sample.verify import verify_output
from synthgen.sample.writer import write_shard
from synthgen.shards import encode_batch, safe_label_dirs, write_manifest
from synthgen.storage import Location

__all__ = ["FASHION_CLASSES", "WrittenShards", "write_shards"]


@dataclass(frozen=True)
class WrittenShards:
    root: str  # the OUT folder
    images: np.ndarray  # uint8 [N, C, H, W], in sample_id order
    labels: np.ndarray  # int64 [N]
    sample_ids: np.ndarray  # int64 [N], 0..N-1
    class_names: tuple[str, ...]  # index -> class name (manifest order)
    shard_files: tuple[str, ...]  # relative paths of each shard's primary file (Parquet, or PNG index)


def write_shards(
    out: str | os.PathLike[str],
    n: int = 50,
    class_names: tuple[str, ...] = FASHION_CLASSES,
    image_shape: tuple[int, int, int] = (1, 28, 28),
    rows_per_shard: int = 20,
    row_group_size: int = 8,
    seed: int = 0,
    fmt: str = "both",
    write_manifest_file: bool = True,
    verify: bool = False,
) -> WrittenShards:
    """Write ``n`` random labelled images with the real shard writer; return what was written.

    Args:
        out: output folder (created).
        n: number of samples (sample_ids 0..n-1).
        class_names: manifest class order.
        image_shape: (C, H, W), C in {1, 3}.
        rows_per_shard: images per shard (the last one may be shorter).
        row_group_size: Parquet rows per row group (small, so tests cross row-group borders).
        seed: RNG seed of pixels and labels.
        fmt: "parquet", "png" or "both".
        write_manifest_file: False leaves the folder as an interrupted run does (no manifest.json).
        verify: also run ``synthgen verify`` on the result and fail if it finds anything.
    """
    root = os.fspath(out)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *image_shape), dtype=np.uint8)  # [N, C, H, W]
    labels = rng.integers(0, len(class_names), size=n).astype(np.int64)  # [N]
    counts = np.bincount(labels, minlength=len(class_names))  # the exact per-class counts the plan records
    plan = SamplePlan(
        checkpoint_digest="0" * 64,
        seed=seed,
        num_samples=n,
        class_names=tuple(class_names),
        label_dirs=safe_label_dirs(class_names),
        class_counts=tuple(int(c) for c in counts),
        image_shape=tuple(image_shape),
        z_dim=8,
        truncation=1.0,
        use_ema=True,
        format=fmt,  # type: ignore[arg-type]
        images_per_shard=rows_per_shard,
        chunk_size=64,
        row_group_size=row_group_size,
        png_compress_level=1,
    )
    loc = Location(root)
    write_plan(loc, plan)  # first, as `synthgen sample` does
    records = []
    for shard in plan.shards():
        ids = np.arange(shard.start, shard.end, dtype=np.int64)
        pngs = encode_batch(images[ids], plan.png_compress_level)
        records.append(write_shard(loc, plan, shard, ids, labels[ids], pngs, "test"))
    if write_manifest_file:
        manifest = build_manifest(
            plan,
            records,
            checkpoint_path="unused",
            resolved_path="unused",
            checkpoint_step=0,
            sample_config={},
            train_config={},
        )
        write_manifest(loc, manifest)
        if verify:
            report = verify_output(root)
            assert report.ok, report.problems
    return WrittenShards(
        root, images, labels, np.arange(n, dtype=np.int64), tuple(class_names), tuple(r["file"] for r in records)
    )


def provenance_rows(out: str) -> dict[int, tuple]:
    """{sample_id: (label, source_id, source, png bytes)} of a dataset with provenance columns (--around /
    --translate), read from its Parquet shards."""
    import pyarrow.parquet as pq

    table = pq.read_table(os.path.join(out, "parquet"))
    pngs = table.column("image").combine_chunks().field("bytes").to_pylist()
    cols = [table.column(c).to_pylist() for c in ("sample_id", "label", "source_id", "source")]
    return {i: (label, sid, src, png) for i, label, sid, src, png in zip(*cols, pngs)}


def shard_shas(manifest: dict) -> list[tuple[str, str]]:
    """(file, sha256) of every shard a manifest lists: equal lists mean byte-identical datasets."""
    return [(s["file"], s["sha256"]) for s in manifest["shards"]]
