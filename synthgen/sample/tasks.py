"""The sampling fleet's Ray tasks: PNG-encode a generated batch (and write its PNG-tree files), write a shard.

Kept apart from ``synthgen.sample.actors`` so that a worker running only these imports no torch and no
networks: a fresh Ray worker's first task would otherwise spend about 1.5 s importing them. Both functions are
pure in their inputs, so a retried task writes the same bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthgen.sample.plan import SamplePlan
from synthgen.sample.writer import needs_bytes_at_commit, streams_rows, write_batch_files, write_shard
from synthgen.shards import encode_batch
from synthgen.storage import Location


def encode_task(
    batch: tuple[np.ndarray, ...], level: int, out: Location | None = None, plan: SamplePlan | None = None
) -> tuple[Any, ...]:
    """Ray task: PNG-encode one generated batch (ids, labels, images, candidates, below, provenance).

    With ``out`` and ``plan`` (a format with per-row files: the PNG tree) it also writes those files now, so
    that the shard's write task only commits them, and appends their entries to the batch; the PNG bytes
    then travel on only when a handler needs them at the shard's end (Parquet).
    """
    ids, labels, images, *rest = batch
    pngs = encode_batch(images, level)
    if out is None or plan is None:
        return (ids, labels, pngs, *rest)
    streamed = write_batch_files(out, plan, ids, labels, pngs)
    return (ids, labels, pngs if needs_bytes_at_commit(plan) else [], *rest, streamed)


def write_task(out: Location, plan: dict[str, Any], index: int, version: str, *batches: Any) -> dict[str, Any]:
    """Ray task: write one shard from its encoded batches (given in id order). For a format with per-row files the
    encode tasks wrote them already (their entries: a 7th item per batch): they are committed, not written again."""
    p = SamplePlan.from_dict(plan)
    ids = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    pngs = [png for b in batches for png in b[2]]
    stats = None
    if p.filter:  # per-shard statistics; the manifest sums them
        stats = {
            "candidates": int(sum(int(b[3].sum()) for b in batches)),
            "below_threshold": int(sum(int(b[4].sum()) for b in batches)),
        }
    provenance = None
    if p.provenance:  # --around / --translate: source_id and source string of every row
        provenance = (np.concatenate([b[5][0] for b in batches]), [src for b in batches for src in b[5][1]])
    streamed = None
    if streams_rows(p):  # the fleet hands such formats' files to the encode tasks (synthgen.sample.fleet)
        streamed = {name: [e for b in batches for e in b[6][name]] for name in batches[0][6]}
    return write_shard(out, p, p.shard(index), ids, labels, pngs, version, stats, provenance, streamed)
