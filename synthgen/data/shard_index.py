"""Index a shard folder's rows (ids, labels, where each image lives) without decoding any image.

Shared by the torch dataset (``shards.py``) and the Ray Data reader (``ray_reader.py``). The format
itself (manifest, file names, handlers) is ``synthgen.shards``; this module adds what random access
needs: for a Parquet dataset the row-group offsets of every shard, for a PNG dataset the file of
every row (listed by each shard's PNG index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthgen.shards import ShardManifest
from synthgen.shards.integrity import check_labels
from synthgen.shards.parquet import PROVENANCE_COLUMNS, open_parquet
from synthgen.shards.png import png_file_label, read_png_index, read_png_sources
from synthgen.storage import Location


@dataclass(frozen=True)
class ShardIndex:
    sample_ids: np.ndarray  # int64 [N], manifest order
    labels: np.ndarray  # int64 [N]
    rg_starts: tuple[np.ndarray, ...]  # parquet: per shard int64 [G + 1] row-group offsets; png: ()
    png_files: tuple[str, ...]  # png format: [N] paths relative to the root; parquet: ()
    source_ids: np.ndarray | None = None  # int64 [N] real image each row varies (--around datasets); else None


def scan_shards(manifest: ShardManifest, out: Location) -> ShardIndex:
    """Index every row: sample ids, labels, and where its image lives, without reading image bytes.

    Raises:
        ShardError: unreadable shards, counts that differ from the manifest, or labels out of range.
    """
    ids, labels, rg_starts, png_files, sources = [], [], [], [], []
    for shard in manifest.shards:
        if manifest.has_parquet:
            pf = open_parquet(out, shard)
            provenance = all(c in pf.schema_arrow.names for c in PROVENANCE_COLUMNS)
            table = pf.read(columns=["sample_id", "label", *(["source_id"] if provenance else [])])
            sources.append(table.column("source_id").to_numpy().astype(np.int64) if provenance else None)
            ids.append(table.column("sample_id").to_numpy().astype(np.int64))
            labels.append(table.column("label").to_numpy().astype(np.int64))
            sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
            rg_starts.append(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
        else:
            files = read_png_index(out, manifest, shard)
            pairs = np.array([png_file_label(manifest, p) for p in files], dtype=np.int64).reshape(-1, 2)  # [rows, 2]
            ids.append(pairs[:, 0])
            labels.append(pairs[:, 1])
            png_files += files
            found = read_png_sources(out, manifest, shard)
            sources.append(found[0] if found is not None else None)
    index = ShardIndex(
        sample_ids=np.concatenate(ids) if ids else np.zeros(0, np.int64),
        labels=np.concatenate(labels) if labels else np.zeros(0, np.int64),
        rg_starts=tuple(rg_starts),
        png_files=tuple(png_files),
        # prior datasets (and any with a shard lacking provenance) have no source ids
        source_ids=np.concatenate(sources) if sources and all(s is not None for s in sources) else None,
    )
    check_labels(manifest, index.labels)
    return index
