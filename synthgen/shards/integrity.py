"""Checks of a dataset against its manifest, shared by the loaders (cheap) and ``synthgen verify`` (full)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow.fs as pafs

from synthgen.errors import ShardError
from synthgen.shards.codec import png_problem
from synthgen.shards.layout import RERUN
from synthgen.shards.types import FileRef, ShardManifest
from synthgen.storage import Location, sha256_hex

REWRITE = "delete it and re-run the same `synthgen sample` command to rewrite it"


@dataclass
class ShardCheck:
    """What ``synthgen verify`` gathers while each format handler checks the contents of its shard files."""

    decode: bool  # also decode every PNG (catches corrupted images inside valid files)
    problems: list[str] = field(default_factory=list)  # one line per problem, each with its fix
    decoded: int = 0  # PNGs decoded so far

    def png(self, data: bytes, image_shape: tuple[int, int, int], where: str) -> None:
        """With ``decode``: decode one PNG and note ``"{where}: {why}; {REWRITE}"`` when it is broken."""
        if self.decode:
            self.decoded += 1
            if (why := png_problem(data, image_shape)) is not None:
                self.problems.append(f"{where}: {why}; {REWRITE}")


def check_file(out: Location, ref: FileRef, what: str) -> tuple[bytes | None, str | None]:
    """``(bytes, None)`` when ``ref`` exists with its recorded size and sha256, else ``(None, problem)``."""
    if not out.exists(ref.file):
        return None, f"{what} {ref.file}: missing; re-run the same `synthgen sample` command to write it"
    data = out.read_bytes(ref.file)
    if len(data) != ref.bytes or sha256_hex(data) != ref.sha256:
        return None, (
            f"{what} {ref.file}: checksum mismatch (manifest: {ref.bytes} bytes, sha256 {ref.sha256[:12]}...; "
            f"file: {len(data)} bytes, sha256 {sha256_hex(data)[:12]}...): the file is corrupted; {REWRITE}"
        )
    return data, None


def check_shard_files(manifest: ShardManifest, out: Location) -> None:
    """Check that every shard the manifest lists exists with the recorded size (cheap; no hashing).

    Full sha256 and pixel checks are ``synthgen verify``'s job.

    Raises:
        ShardError: a shard is missing or its size differs (truncated or replaced).
    """
    infos = out.fs.get_file_info([out.path(s.file) for s in manifest.shards])
    for shard, info in zip(manifest.shards, infos):
        if info.type != pafs.FileType.File:
            raise ShardError(f"{manifest.root}: shard {shard.file} is listed in the manifest but missing; {RERUN}")
        if shard.bytes >= 0 and info.size != shard.bytes:
            raise ShardError(
                f"{manifest.root}: shard {shard.file} is {info.size} bytes but the manifest records {shard.bytes} "
                f"(truncated or replaced); {RERUN}, or copy the folder again"
            )


def check_labels(manifest: ShardManifest, labels: np.ndarray) -> None:
    """Labels must index class_names and match the manifest's per-class counts.

    Raises:
        ShardError: a label is out of range or the counts differ.
    """
    k = len(manifest.class_names)
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ShardError(
            f"{manifest.root}: labels outside [0, {k}) for class_names {list(manifest.class_names)}; {RERUN}"
        )
    if manifest.per_class:
        counts = np.bincount(labels, minlength=k)
        found = {name: int(counts[i]) for i, name in enumerate(manifest.class_names)}
        expected = {name: manifest.per_class.get(name, 0) for name in manifest.class_names}
        if found != expected:
            raise ShardError(
                f"{manifest.root}: per-class counts {found} differ from the manifest's {expected}; {RERUN}"
            )
