"""Format handler "parquet": one Parquet file per shard, ``parquet/shard-NNNNNN.parquet``.

Columns: ``sample_id`` int64, ``label`` int64, ``label_name`` string, ``image`` struct<bytes:
binary (PNG), path: string (``<id:012d>.png``)>, and for datasets sampled ``--around`` real images
``source_id`` int64 (the real image's index in its real set) and ``source`` string (its path, or
``"<split>:<index>"``); prior draws have no such columns (the schema they always had). Schema metadata
``b"huggingface"`` holds the
Hugging Face ``datasets`` features (``Image``, ``ClassLabel``) so ``load_dataset("parquet", ...)``
decodes images without a cast; ``b"synthgen"`` holds the writer's metadata (version, checkpoint
digest, seed, plan digest, the shard's index and id range, filter statistics), without timestamps
so the bytes stay reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthgen.errors import ShardError
from synthgen.shards.integrity import REWRITE, ShardCheck
from synthgen.shards.layout import RERUN, Shard, png_name, shard_name
from synthgen.shards.types import DatasetSpec, FileRef, ShardInfo, ShardManifest, ShardRows
from synthgen.storage import Location, sha256_hex

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
REQUIRED_COLUMNS = ("sample_id", "label", "image")
PROVENANCE_COLUMNS = ("source_id", "source")  # --around datasets only


def hf_features(class_names: Sequence[str], provenance: bool = False) -> dict[str, Any]:
    """Hugging Face ``datasets`` features of the Parquet columns (``provenance``: with source_id, source)."""
    features: dict[str, Any] = {
        "sample_id": {"dtype": "int64", "_type": "Value"},
        "label": {"names": list(class_names), "_type": "ClassLabel"},
        "label_name": {"dtype": "string", "_type": "Value"},
        "image": {"_type": "Image"},
    }
    if provenance:
        features.update(source_id={"dtype": "int64", "_type": "Value"}, source={"dtype": "string", "_type": "Value"})
    return features


def parquet_schema(class_names: Sequence[str], synthgen_meta: Mapping[str, Any], provenance: bool = False) -> pa.Schema:
    """The shard schema with its ``huggingface`` and ``synthgen`` metadata (``provenance``: + source_id, source)."""
    fields = [("sample_id", pa.int64()), ("label", pa.int64()), ("label_name", pa.string()), ("image", IMAGE_TYPE)]
    if provenance:
        fields += [("source_id", pa.int64()), ("source", pa.string())]
    return pa.schema(
        fields,
        metadata={
            b"huggingface": json.dumps({"info": {"features": hf_features(class_names, provenance)}}).encode(),
            b"synthgen": json.dumps(dict(synthgen_meta), sort_keys=True).encode(),
        },
    )


def png_column(table: pa.Table) -> pa.Array:
    """The PNG ``bytes`` field of the ``image`` struct column, as one array."""
    return pc.struct_field(table.column("image").combine_chunks(), "bytes")


def parquet_bytes(rows: ShardRows, spec: DatasetSpec, meta: Mapping[str, Any]) -> bytes:
    """Serialise one shard's rows to Parquet bytes."""
    ids = rows.sample_ids
    names = [spec.class_names[c] for c in rows.labels.tolist()]
    image = pa.StructArray.from_arrays(
        [pa.array(list(rows.pngs), pa.binary()), pa.array([png_name(i) for i in ids.tolist()], pa.string())],
        fields=list(IMAGE_TYPE),
    )
    provenance = rows.source_ids is not None
    columns = [pa.array(ids, pa.int64()), pa.array(rows.labels, pa.int64()), pa.array(names, pa.string()), image]
    if provenance:
        columns += [pa.array(rows.source_ids, pa.int64()), pa.array(list(rows.sources or ()), pa.string())]
    table = pa.Table.from_arrays(columns, schema=parquet_schema(spec.class_names, meta, provenance))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=spec.row_group_size)
    return sink.getvalue().to_pybytes()


def open_parquet(out: Location, shard: ShardInfo) -> pq.ParquetFile:
    """Open one Parquet shard and check its columns and row count against the manifest.

    Raises:
        ShardError: unreadable, missing columns, or a row count that differs from the manifest.
    """
    try:
        pf = pq.ParquetFile(out.fs.open_input_file(out.path(shard.file)))
    except (pa.ArrowException, OSError) as e:
        raise ShardError(f"{out.display()}: cannot read shard {shard.file}: {e}; {RERUN}") from e
    missing = [c for c in REQUIRED_COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        raise ShardError(f"{out.display()}: shard {shard.file} lacks columns {missing}; {RERUN}")
    if pf.metadata.num_rows != shard.rows:
        raise ShardError(
            f"{out.display()}: shard {shard.file} has {pf.metadata.num_rows} rows, manifest says {shard.rows}; {RERUN}"
        )
    return pf


class ParquetFormat:
    """The "parquet" handler: write, read back, resume-check and verify Parquet shards."""

    name = "parquet"
    record_key: str | None = None  # its file is the shard record's own file/bytes/sha256
    what = "shard"  # how messages call its file
    folder = "parquet"  # where its committing files live (verify reports strays there)
    folders = ("parquet",)  # everything it writes (what --overwrite deletes)
    streams = False  # one file per shard: written whole, at the shard's end

    def shard_file(self, index: int) -> str:
        """Path relative to OUT of shard ``index``'s Parquet file."""
        return f"parquet/{shard_name(index)}.parquet"

    def write(self, out: Location, rows: ShardRows, spec: DatasetSpec, meta: Mapping[str, Any]) -> FileRef:
        """Write the shard's Parquet file atomically; return its manifest entry."""
        data = parquet_bytes(rows, spec, meta)
        rel = self.shard_file(rows.index)
        out.write_bytes(rel, data)
        return FileRef(rel, len(data), sha256_hex(data))

    def read(self, out: Location, manifest: ShardManifest, shard: ShardInfo) -> ShardRows:
        """Read one whole shard back (ids, labels, PNG bytes).

        Raises:
            ShardError: unreadable, or columns / rows that differ from the manifest.
        """
        pf = open_parquet(out, shard)
        provenance = all(c in pf.schema_arrow.names for c in PROVENANCE_COLUMNS)
        table = pf.read(columns=["sample_id", "label", "image", *(PROVENANCE_COLUMNS if provenance else ())])
        return ShardRows(
            shard.index,
            table.column("sample_id").to_numpy().astype(np.int64),
            table.column("label").to_numpy().astype(np.int64),
            png_column(table).to_pylist(),
            table.column("source_id").to_numpy().astype(np.int64) if provenance else None,
            table.column("source").to_pylist() if provenance else None,
        )

    def completed(
        self, out: Location, shards: Sequence[Shard], plan_digest: str, expect: Mapping[int, FileRef], need_filter: bool
    ) -> dict[int, dict[str, Any]]:
        """Manifest parts of the shards whose Parquet file is complete and of this plan.

        A file counts when its footer names this plan and shard with the right row count, and its
        sha256 equals ``expect`` (the old manifest's) or, without one, every page parses.
        """
        done = {}
        for shard in shards:
            part = self._completed(out, shard, plan_digest, expect.get(shard.index), need_filter)
            if part is not None:
                done[shard.index] = part
        return done

    def _completed(
        self, out: Location, shard: Shard, digest: str, expect: FileRef | None, need_filter: bool
    ) -> dict[str, Any] | None:
        rel = self.shard_file(shard.index)
        try:
            with out.fs.open_input_file(out.path(rel)) as fh:  # the footer only
                footer = pq.ParquetFile(fh).metadata
            meta = json.loads((footer.metadata or {}).get(b"synthgen", b"{}"))
            if footer.num_rows != shard.rows or meta.get("plan_digest") != digest or meta.get("shard") != shard.index:
                return None
            data = out.read_bytes(rel)
            sha = sha256_hex(data)
            if expect is not None and expect.sha256 and sha != expect.sha256:
                return None
            if expect is None:
                pq.read_table(pa.BufferReader(data))  # no manifest to compare with: at least parse every page
        except (OSError, ValueError, pa.ArrowException):
            return None
        part: dict[str, Any] = {"file": rel, "bytes": len(data), "sha256": sha}
        if need_filter:
            if not isinstance(meta.get("filter"), dict):
                return None
            part["filter"] = meta["filter"]
        return part

    def verify(
        self, out: Location, manifest: ShardManifest, shard: ShardInfo, data: bytes, check: ShardCheck
    ) -> list[int]:
        """Check one shard's rows (ids, labels, names, paths, PNGs); return the labels of its well-labelled rows."""
        rel, problems = shard.part(self.name).file, check.problems
        try:
            table = pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as exc:
            problems.append(f"shard {rel}: unreadable Parquet ({exc}); {REWRITE}")
            return []
        ids = table.column("sample_id").to_pylist()
        if ids != list(range(shard.sample_id_start, shard.sample_id_end)):
            problems.append(
                f"shard {rel}: sample_ids are not exactly [{shard.sample_id_start}, "
                f"{shard.sample_id_end}) in order; {REWRITE}"
            )
        labels, names = table.column("label").to_pylist(), table.column("label_name").to_pylist()
        images = table.column("image").combine_chunks()
        pngs, paths = images.field("bytes").to_pylist(), images.field("path").to_pylist()
        _check_provenance(table, rel, manifest.source_set is not None, problems)
        classes, found = manifest.class_names, []
        for sample_id, label, name, png, path in zip(ids, labels, names, pngs, paths):
            if not 0 <= label < len(classes) or classes[label] != name:
                problems.append(
                    f"shard {rel}: sample {sample_id} has label {label} with label_name {name!r}; {REWRITE}"
                )
                continue
            found.append(label)
            if path != png_name(sample_id):
                problems.append(
                    f"shard {rel}: sample {sample_id} has image path {path!r}, expected {png_name(sample_id)!r}"
                )
            check.png(png, manifest.image_shape, f"shard {rel}: sample {sample_id}")
        return found


def _check_provenance(table: pa.Table, rel: str, expected: bool, problems: list[str]) -> None:
    """Provenance columns exist exactly for --around / --translate datasets, with a source_id >= 0 and a source on
    every row."""
    present = [c for c in PROVENANCE_COLUMNS if c in table.column_names]
    if not expected:
        if present:
            problems.append(
                f"shard {rel}: has provenance columns {present} but the manifest records no real set; {REWRITE}"
            )
        return
    if len(present) != len(PROVENANCE_COLUMNS):
        problems.append(
            f"shard {rel}: lacks the provenance columns {list(PROVENANCE_COLUMNS)} of an --around / --translate "
            f"dataset; {REWRITE}"
        )
        return
    ids, sources = table.column("source_id"), table.column("source")
    if ids.type != pa.int64() or ids.null_count or (len(ids) and pc.min(ids).as_py() < 0):
        problems.append(f"shard {rel}: source_id must be int64 >= 0 on every row; {REWRITE}")
    if sources.null_count or any(not s for s in sources.to_pylist()):
        problems.append(f"shard {rel}: source must name the real image on every row; {REWRITE}")
