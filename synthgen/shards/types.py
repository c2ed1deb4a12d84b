"""The values passed between the shard writer, the format handlers and the readers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DatasetSpec:
    """What every shard of one dataset shares (from the sampling plan, or read back from the manifest)."""

    class_names: tuple[str, ...]  # label index -> class name
    label_dirs: tuple[str, ...]  # label index -> folder under png/ (filesystem-safe)
    image_shape: tuple[int, int, int]  # (C, H, W)
    row_group_size: int = 1024  # Parquet rows per row group


@dataclass(frozen=True)
class ShardRows:
    """One shard's rows in sample_id order (what a handler writes and reads back)."""

    index: int  # shard k
    sample_ids: np.ndarray  # int64 [rows], consecutive
    labels: np.ndarray  # int64 [rows]
    pngs: Sequence[bytes]  # [rows] PNG byte strings
    source_ids: np.ndarray | None = None  # int64 [rows] index of the real image varied (sampled --around); else None
    sources: Sequence[str] | None = None  # [rows] that real image's path / "<split>:<index>" (with source_ids)

    @property
    def rows(self) -> int:
        return len(self.sample_ids)


@dataclass(frozen=True)
class FileRef:
    """A file of the dataset as the manifest records it."""

    file: str  # path relative to the dataset folder
    bytes: int = -1  # size (-1 = not recorded)
    sha256: str = ""  # hex digest ("" = not recorded)

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> FileRef:
        return cls(str(rec["file"]), int(rec.get("bytes", -1)), str(rec.get("sha256", "")))

    def to_record(self) -> dict[str, Any]:
        return {"file": self.file, "bytes": self.bytes, "sha256": self.sha256}


@dataclass(frozen=True)
class ShardInfo:
    """One shard of the manifest."""

    index: int  # k
    rows: int  # rows in this shard
    sample_id_start: int  # first sample_id
    sample_id_end: int  # last sample_id + 1
    file: str  # the shard's primary file: the Parquet shard, or the PNG index when format is png
    bytes: int  # its size (-1 = not recorded)
    sha256: str  # its hex digest ("" = not recorded)
    parts: Mapping[str, FileRef] = field(default_factory=dict)  # handler name -> the file it wrote
    filter: Mapping[str, int] | None = None  # judge-filtered shards: {candidates, below_threshold}

    def part(self, handler: str) -> FileRef:
        """The file written by format handler ``handler`` (e.g. "png" -> its PNG index)."""
        return self.parts[handler]


@dataclass(frozen=True)
class ShardManifest:
    """A parsed ``manifest.json``."""

    root: str  # the folder or URI the manifest was read from
    total: int  # rows over all shards
    class_names: tuple[str, ...]  # label index -> class name (the class order)
    image_shape: tuple[int, int, int]  # (C, H, W)
    shards: tuple[ShardInfo, ...]  # in sample_id order
    per_class: dict[str, int]  # class name -> row count
    format: str  # one of synthgen.shards.FORMATS
    label_dirs: dict[str, str]  # class name -> folder under png/ (e.g. "T-shirt/top" -> "T-shirt_top")
    raw: dict[str, Any]  # the whole manifest (checkpoint, seed, plan, config, synthgen_version, created)
    parts: tuple[str, ...] = ()  # names of the format's handlers, the primary one (readers use it) last

    @property
    def has_parquet(self) -> bool:
        return "parquet" in self.parts

    @property
    def source_set(self) -> dict[str, Any] | None:
        """The set every row's source_id indexes (``--around``: the real set; ``--translate``: the input set), as
        the manifest describes it ({kind, spec, split, size, digest, ...}); None without provenance columns."""
        if "around" in self.raw:
            return self.raw["around"]["real"]
        if "translate" in self.raw:
            return self.raw["translate"]["input"]
        return None

    def spec(self) -> DatasetSpec:
        """The DatasetSpec of this dataset (label_dirs in label order)."""
        dirs = tuple(self.label_dirs.get(name, "") for name in self.class_names)
        return DatasetSpec(self.class_names, dirs, self.image_shape)
