"""Write one planned shard through the shard format (``synthgen.shards``), with the sampler's metadata.

The format itself (file names, Parquet schema, PNG tree, atomic writes, one handler per format)
lives in ``synthgen.shards``; this module only maps a ``SamplePlan`` and a ``Shard`` onto it and
decides what the writer records about where a shard came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from synthgen.sample.plan import SamplePlan
from synthgen.shards import DatasetSpec, Shard, ShardRows, handlers_for
from synthgen.shards import write_rows as write_format_rows
from synthgen.shards import write_shard as write_format_shard
from synthgen.storage import Location


def dataset_spec(plan: SamplePlan) -> DatasetSpec:
    """What every shard of the plan's dataset shares: classes, label folders, image shape, row groups."""
    return DatasetSpec(plan.class_names, plan.label_dirs, plan.image_shape, plan.row_group_size)


def shard_metadata(
    plan: SamplePlan, shard: Shard, version: str, filter_stats: dict[str, int] | None = None
) -> dict[str, Any]:
    """The writer's metadata of one shard (no timestamps: bytes stay reproducible).

    The Parquet handler stores it whole (schema metadata ``b"synthgen"``); the PNG index keeps the
    plan digest and the filter statistics. A resumed run reads them back to recognise its shards.
    """
    meta: dict[str, Any] = {
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


def write_shard(
    out: Location,
    plan: SamplePlan,
    shard: Shard,
    ids: np.ndarray,
    labels: np.ndarray,
    pngs: Sequence[bytes],
    version: str,
    filter_stats: dict[str, int] | None = None,
    provenance: tuple[np.ndarray, Sequence[str]] | None = None,
    streamed: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """Write one complete planned shard in the plan's format, each file atomically.

    Args:
        out: the output folder.
        plan: the dataset plan (format, class names, folders, row groups).
        shard: which shard; ``ids`` must equal ``range(shard.start, shard.end)``.
        ids, labels: int64 [rows]; pngs: rows PNG byte strings, in id order.
        version: synthgen version for the metadata.
        filter_stats: judge-filtered shards: {"candidates", "below_threshold"}, kept in the shard's
            files (so a resumed run can still total them) and in its record.
        provenance: --around / --translate: (source_ids int64 [rows], source strings [rows]); None for prior draws
            (the shard then has no provenance columns: the pre---around schema).
        streamed: the per-row files the fleet already wrote batch by batch (``write_batch_files``' entries of
            every row, in id order): they are committed, not written again. ``pngs`` may then be empty when no
            handler of the format needs the bytes.

    Returns:
        The shard's manifest record (file, rows, id range, bytes, sha256, png_index, filter).

    Raises:
        ValueError: rows that do not match the shard (a bug upstream, never silently written).
    """
    need_bytes = streamed is None or needs_bytes_at_commit(plan)
    if (
        ids.tolist() != list(range(shard.start, shard.end))
        or len(labels) != shard.rows
        or (need_bytes and len(pngs) != shard.rows)
        or any(len(entries) != shard.rows for entries in (streamed or {}).values())
    ):
        raise ValueError(f"{shard.name}: got {len(ids)} rows that are not sample_ids [{shard.start}, {shard.end})")
    if plan.provenance != (provenance is not None) or (provenance and len(provenance[0]) != shard.rows):
        raise ValueError(
            f"{shard.name}: provenance must be given for every row exactly when sampling --around / --translate"
        )
    source_ids, sources = provenance if provenance is not None else (None, None)
    rows = ShardRows(
        shard.index,
        np.asarray(ids, dtype=np.int64),
        np.asarray(labels, dtype=np.int64),
        pngs,
        None if source_ids is None else np.asarray(source_ids, dtype=np.int64),
        sources,
    )
    meta = shard_metadata(plan, shard, version, filter_stats)
    return write_format_shard(out, plan.format, rows, dataset_spec(plan), meta, streamed)


def streams_rows(plan: SamplePlan) -> bool:
    """Whether a handler of the plan's format writes per-row files that the fleet can write batch by batch."""
    return any(h.streams for h in handlers_for(plan.format))


def needs_bytes_at_commit(plan: SamplePlan) -> bool:
    """Whether a handler of the plan's format needs the shard's PNG bytes when the shard is written (Parquet)."""
    return not all(h.streams for h in handlers_for(plan.format))


def write_batch_files(
    out: Location, plan: SamplePlan, ids: np.ndarray, labels: np.ndarray, pngs: Sequence[bytes]
) -> dict[str, list[Any]]:
    """Write the per-row files of one encoded batch (the PNG tree) now, each atomically, so that a shard's end
    has only its commit left; returns each streaming handler's entries for ``write_shard(..., streamed=...)``.

    Safe to kill and to repeat: the files carry the rows' final names and bytes, and a shard without its commit
    (its PNG index) is incomplete, so a re-run writes them again.
    """
    rows = ShardRows(-1, np.asarray(ids, dtype=np.int64), np.asarray(labels, dtype=np.int64), pngs)
    return write_format_rows(out, plan.format, rows, dataset_spec(plan))
