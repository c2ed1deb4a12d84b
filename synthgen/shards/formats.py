"""The output formats, looked up in one table (as webdataset's writer looks up its encoders).

A format is a list of handlers; each handler writes, reads back, resume-checks and verifies its own
files for one shard. The last handler of a format is its *primary* one: its file is the shard
record's ``file`` and the one readers use; it is also written last, so it commits the shard.

Adding a format = one handler module (``name``, ``record_key``, ``what``, ``folder``, ``folders``, ``streams``,
``shard_file``, ``write``, ``read``, ``completed``, ``verify``; with ``streams``, also ``write_rows`` and
``commit``), one line in ``HANDLERS`` (and in ``FORMAT_PARTS``), and its round-trip test in ``tests/test_shards.py``.

A handler that ``streams`` writes one file per row (the PNG tree): the sampling fleet writes those files batch
by batch as they are encoded (``write_rows``), so that only the commit is left when a shard's last batch
arrives; the others (Parquet) write their one file at the shard's end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from synthgen.errors import ConfigError
from synthgen.shards.integrity import ShardCheck
from synthgen.shards.layout import Shard
from synthgen.shards.parquet import ParquetFormat
from synthgen.shards.png import PngFormat
from synthgen.shards.types import DatasetSpec, FileRef, ShardInfo, ShardManifest, ShardRows
from synthgen.storage import Location


class FormatHandler(Protocol):
    """What every format handler provides (see ``parquet.py`` and ``png.py``)."""

    name: str  # its name in ``--format`` and in ShardInfo.parts
    record_key: str | None  # shard-record key of its file; None (only for an always-primary handler): the record's own
    what: str  # how messages call its committing file ("shard", "png index")
    folder: str  # the folder of its committing files (stray files there are reported by verify)
    folders: tuple[str, ...]  # every top-level folder it writes (``--overwrite`` deletes them)
    streams: bool  # True: per-row files, written batch by batch (write_rows) and committed by commit

    def shard_file(self, index: int) -> str: ...

    def write(self, out: Location, rows: ShardRows, spec: DatasetSpec, meta: Mapping[str, Any]) -> FileRef: ...

    # streaming handlers only (``streams``):
    def write_rows(self, out: Location, rows: ShardRows, spec: DatasetSpec) -> list[Any]: ...

    def commit(self, out: Location, rows: ShardRows, meta: Mapping[str, Any], files: list[Any]) -> FileRef: ...

    def read(self, out: Location, manifest: ShardManifest, shard: ShardInfo) -> ShardRows: ...

    def completed(
        self, out: Location, shards: Sequence[Shard], plan_digest: str, expect: Mapping[int, FileRef], need_filter: bool
    ) -> dict[int, dict[str, Any]]: ...

    def verify(
        self, out: Location, manifest: ShardManifest, shard: ShardInfo, data: bytes, check: ShardCheck
    ) -> list[int]: ...


HANDLERS: dict[str, FormatHandler] = {"parquet": ParquetFormat(), "png": PngFormat()}
# --format value -> its handlers, primary last. "both" writes the PNG tree first so that the Parquet
# file, written last, is the shard's commit (and the file readers use).
FORMAT_PARTS: dict[str, tuple[str, ...]] = {**{name: (name,) for name in HANDLERS}, "both": ("png", "parquet")}
FORMATS: tuple[str, ...] = tuple(FORMAT_PARTS)  # ("parquet", "png", "both")


def format_parts(fmt: str) -> tuple[str, ...]:
    """Handler names of format ``fmt``, the primary one last.

    Raises:
        ConfigError: unknown format (the message lists the known ones).
    """
    if fmt not in FORMAT_PARTS:
        raise ConfigError(f"format={fmt!r} is not one of {list(FORMATS)}")
    return FORMAT_PARTS[fmt]


def handlers_for(fmt: str) -> tuple[FormatHandler, ...]:
    """The handlers of format ``fmt``, the primary one last.

    Raises:
        ConfigError: unknown format.
    """
    return tuple(HANDLERS[name] for name in format_parts(fmt))


def shard_record(shard: Shard, parts: Sequence[tuple[FormatHandler, Mapping[str, Any]]]) -> dict[str, Any]:
    """Assemble a manifest shard record from each handler's ``{file, bytes, sha256[, filter]}``.

    The primary (last) part is the record's own file; the others go under their ``record_key``.
    A ``filter`` entry (judge statistics) moves to the record itself.
    """
    record: dict[str, Any] = {
        "index": shard.index,
        "rows": shard.rows,
        "sample_id_start": shard.start,
        "sample_id_end": shard.end,
    }
    stats = None
    for handler, part in parts:
        ref = {k: v for k, v in part.items() if k != "filter"}
        stats = part.get("filter", stats)
        if handler.record_key:
            record[handler.record_key] = ref
    record.update({k: v for k, v in parts[-1][1].items() if k != "filter"})
    if stats is not None:
        record["filter"] = stats
    return record


def write_rows(out: Location, fmt: str, rows: ShardRows, spec: DatasetSpec) -> dict[str, list[Any]]:
    """Write the per-row files of some rows of a shard (one batch) for every streaming handler of ``fmt``.

    Returns:
        handler name -> its entries for these rows; concatenate a shard's batches in id order and pass them to
        ``write_shard(..., streamed=...)``, which then commits them instead of writing those files again.

    Raises:
        ConfigError: unknown format.
    """
    return {h.name: h.write_rows(out, rows, spec) for h in handlers_for(fmt) if h.streams}


def write_shard(
    out: Location,
    fmt: str,
    rows: ShardRows,
    spec: DatasetSpec,
    meta: Mapping[str, Any],
    streamed: Mapping[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """Write one complete shard in format ``fmt``, every file atomically, the primary file last.

    Args:
        out: the dataset folder.
        fmt: one of FORMATS.
        rows: the shard's rows in sample_id order (consecutive ids); its PNG bytes may be empty when
            every handler that needs them streamed (``streamed`` holds their entries).
        spec: class names, label folders, image shape, row group size.
        meta: the writer's metadata (plan digest, shard index and id range, ``filter`` statistics ...).
        streamed: handler name -> the entries ``write_rows`` returned for all of the shard's rows (in id order):
            those files exist already and the handler only commits them. None: every handler writes everything.

    Returns:
        The shard's manifest record (index, rows, id range, file, bytes, sha256, png_index?, filter?).

    Raises:
        ConfigError: unknown format.
    """
    ids = rows.sample_ids
    shard = Shard(rows.index, int(ids[0]) if rows.rows else 0, int(ids[-1]) + 1 if rows.rows else 0)
    parts = []
    for handler in handlers_for(fmt):
        if streamed is not None and handler.streams:
            ref = handler.commit(out, rows, meta, streamed[handler.name])
        else:
            ref = handler.write(out, rows, spec, meta)
        part = ref.to_record()
        if meta.get("filter") is not None:
            part["filter"] = meta["filter"]
        parts.append((handler, part))
    return shard_record(shard, parts)


def read_shard(out: Location, manifest: ShardManifest, shard: ShardInfo) -> ShardRows:
    """Read one whole shard back through the dataset's primary handler.

    Raises:
        ShardError: unreadable or inconsistent with the manifest.
    """
    return HANDLERS[manifest.parts[-1]].read(out, manifest, shard)
