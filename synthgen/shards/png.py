"""Format handler "png": an ImageFolder tree ``png/<label dir>/<id:012d>.png`` plus one index per shard.

The index ``png_index/shard-NNNNNN.json`` lists the shard's files with their sizes and sha256 and is
written after them, so it is the shard's commit: a shard without its index is incomplete. Its keys:
``shard``, ``sample_id_start``, ``sample_id_end``, ``plan_digest``, ``files`` ([path, bytes, sha256]
in sample_id order), for judge-filtered shards ``filter``, and for datasets sampled ``--around`` real images
``sources`` ([source_id, source] per file, in the same order).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from synthgen.errors import ShardError
from synthgen.shards.integrity import REWRITE, ShardCheck, check_file
from synthgen.shards.layout import RERUN, Shard, is_relative, parse_png_path, png_name, png_path, shard_name
from synthgen.shards.types import DatasetSpec, FileRef, ShardInfo, ShardManifest, ShardRows
from synthgen.storage import Location, sha256_hex


def read_png_index(out: Location, manifest: ShardManifest, shard: ShardInfo) -> list[str]:
    """The PNG paths (relative to the root, in sample_id order) a shard's PNG index lists.

    Raises:
        ShardError: the index is unreadable or lists a different number of files than the manifest.
    """
    rel = shard.part("png").file
    try:
        files = [str(entry[0]) for entry in json.loads(out.read_bytes(rel))["files"]]
    except (ValueError, KeyError, TypeError, IndexError, OSError) as e:
        raise ShardError(f"{manifest.root}: PNG index {rel} is unreadable ({e}); {RERUN}") from e
    if len(files) != shard.rows or not all(is_relative(p) for p in files):
        raise ShardError(
            f"{manifest.root}: PNG index {rel} lists {len(files)} files, manifest says {shard.rows}; {RERUN}"
        )
    return files


def read_png_sources(out: Location, manifest: ShardManifest, shard: ShardInfo) -> tuple[np.ndarray, list[str]] | None:
    """(source_ids int64 [rows], sources [rows]) a shard's PNG index lists (--around datasets); None without them.

    Raises:
        ShardError: the index is unreadable or lists another number of sources than the manifest's rows.
    """
    rel = shard.part("png").file
    try:
        entries = json.loads(out.read_bytes(rel)).get("sources")
        if entries is None:
            return None
        ids, names = np.array([int(e[0]) for e in entries], dtype=np.int64), [str(e[1]) for e in entries]
    except (ValueError, KeyError, TypeError, IndexError, OSError, AttributeError) as e:
        raise ShardError(f"{manifest.root}: PNG index {rel} is unreadable ({e}); {RERUN}") from e
    if len(ids) != shard.rows:
        raise ShardError(
            f"{manifest.root}: PNG index {rel} lists {len(ids)} sources, manifest says {shard.rows}; {RERUN}"
        )
    return ids, names


def png_file_label(manifest: ShardManifest, rel: str) -> tuple[int, int]:
    """``(sample_id, label)`` of a ``png/<class folder>/<sample_id>.png`` path (relative or absolute).

    Raises:
        ShardError: the path is not in a known class folder or its name is not a sample id.
    """
    by_dir = {d: manifest.class_names.index(name) for name, d in manifest.label_dirs.items()}
    try:
        folder, sample_id = parse_png_path(rel)
        return sample_id, by_dir[folder]
    except (ValueError, KeyError) as e:
        raise ShardError(f"{manifest.root}: {rel!r} is not png/<class folder>/<sample_id>.png; {RERUN}") from e


def read_file(out: Location, rel: str) -> bytes:
    """The bytes of ``rel`` (e.g. one PNG).

    Raises:
        ShardError: the file is missing or unreadable.
    """
    try:
        return out.read_bytes(rel)
    except (pa.ArrowException, OSError) as e:
        raise ShardError(f"{out.display()}: cannot read {rel} ({e}); {RERUN}") from e


class PngFormat:
    """The "png" handler: write, read back, resume-check and verify PNG trees with their indexes."""

    name = "png"
    record_key: str | None = "png_index"  # the shard record keeps its index under this key
    what = "png index"  # how messages call its committing file
    folder = "png_index"  # where its committing files live (verify reports strays there)
    folders = ("png", "png_index")  # everything it writes (what --overwrite deletes)
    streams = True  # its per-row files can be written batch by batch (write_rows) before the commit

    def shard_file(self, index: int) -> str:
        """Path relative to OUT of shard ``index``'s PNG index."""
        return f"png_index/{shard_name(index)}.json"

    def write(self, out: Location, rows: ShardRows, spec: DatasetSpec, meta: Mapping[str, Any]) -> FileRef:
        """Write the PNG files, then the shard's index listing them (the commit), each atomically."""
        return self.commit(out, rows, meta, self.write_rows(out, rows, spec))

    def write_rows(self, out: Location, rows: ShardRows, spec: DatasetSpec) -> list[list[Any]]:
        """Write the PNG files of some of a shard's rows (a batch: the fleet streams them as they are encoded),
        each atomically; returns their index entries ``[path, bytes, sha256]`` in row order."""
        files = []
        for sample_id, label, data in zip(rows.sample_ids.tolist(), rows.labels.tolist(), rows.pngs):
            rel = png_path(spec.label_dirs[label], sample_id)
            out.write_bytes(rel, data)
            files.append([rel, len(data), sha256_hex(data)])
        return files

    def commit(self, out: Location, rows: ShardRows, meta: Mapping[str, Any], files: list[list[Any]]) -> FileRef:
        """Write the shard's index over ``files`` (``write_rows``' entries of every row, in row order), atomically:
        the shard is complete from here on. ``rows`` gives the ids and provenance; its PNG bytes are not needed."""
        index = {
            "shard": rows.index,
            "sample_id_start": int(rows.sample_ids[0]) if rows.rows else 0,
            "sample_id_end": int(rows.sample_ids[-1]) + 1 if rows.rows else 0,
            "plan_digest": meta.get("plan_digest", ""),
            "files": files,
        }
        if meta.get("filter") is not None:
            index["filter"] = meta["filter"]
        if rows.source_ids is not None:
            index["sources"] = [[int(i), str(src)] for i, src in zip(rows.source_ids.tolist(), rows.sources or ())]
        data = json.dumps(index, separators=(",", ":")).encode()
        rel = self.shard_file(rows.index)
        out.write_bytes(rel, data)
        return FileRef(rel, len(data), sha256_hex(data))

    def read(self, out: Location, manifest: ShardManifest, shard: ShardInfo) -> ShardRows:
        """Read one whole shard back: ids and labels from the listed paths, the PNG bytes of each.

        Raises:
            ShardError: an unreadable index, a path outside the class folders, or a missing PNG.
        """
        files = read_png_index(out, manifest, shard)
        pairs = np.array([png_file_label(manifest, p) for p in files], dtype=np.int64).reshape(-1, 2)  # [rows, 2]
        sources = read_png_sources(out, manifest, shard)
        return ShardRows(
            shard.index,
            pairs[:, 0],
            pairs[:, 1],
            [read_file(out, p) for p in files],
            None if sources is None else sources[0],
            None if sources is None else sources[1],
        )

    def completed(
        self, out: Location, shards: Sequence[Shard], plan_digest: str, expect: Mapping[int, FileRef], need_filter: bool
    ) -> dict[int, dict[str, Any]]:
        """Manifest parts of the shards whose index names this plan and whose files all exist with their sizes."""
        if not out.list_files("png_index"):
            return {}
        selector = pafs.FileSelector(out.path("png"), recursive=True, allow_not_found=True)
        sizes = {
            i.path[len(out.root) + 1 :]: i.size  # one listing for every shard
            for i in out.fs.get_file_info(selector)
            if i.type == pafs.FileType.File
        }
        done = {}
        for shard in shards:
            rel = self.shard_file(shard.index)
            try:
                data = out.read_bytes(rel)
                index = json.loads(data)
            except (OSError, ValueError):
                continue
            files = index.get("files", [])
            if index.get("plan_digest") != plan_digest or len(files) != shard.rows:
                continue
            if any(sizes.get(path) != size for path, size, _ in files):
                continue
            if need_filter and not isinstance(index.get("filter"), dict):
                continue
            done[shard.index] = {
                "file": rel,
                "bytes": len(data),
                "sha256": sha256_hex(data),
                **({"filter": index["filter"]} if need_filter else {}),
            }
        return done

    def verify(
        self, out: Location, manifest: ShardManifest, shard: ShardInfo, data: bytes, check: ShardCheck
    ) -> list[int]:
        """Check the PNG files one shard index lists; return the label of each file found intact."""
        rel, problems = shard.part(self.name).file, check.problems
        try:
            index = json.loads(data)
            files = index["files"]
        except (ValueError, KeyError) as exc:
            problems.append(f"png index {rel}: unreadable ({exc}); {REWRITE}")
            return []
        sources = index.get("sources")
        if (manifest.source_set is not None) != (sources is not None) or (
            sources is not None and len(sources) != len(files)
        ):
            problems.append(
                f"png index {rel}: its sources list does not match the manifest (one [source_id, source] "
                f"per file exactly for --around / --translate datasets); {REWRITE}"
            )
        expected_ids = list(range(shard.sample_id_start, shard.sample_id_end))
        by_dir = {manifest.label_dirs[name]: c for c, name in enumerate(manifest.class_names)}
        found = []
        for sample_id, (path, size, sha) in zip(expected_ids, files):
            folder = path.split("/")[1] if path.count("/") == 2 else ""
            if path != f"png/{folder}/{png_name(sample_id)}" or folder not in by_dir:
                problems.append(f"png index {rel}: entry {path!r} is not png/<class folder>/{png_name(sample_id)}")
                continue
            png, problem = check_file(out, FileRef(path, size, sha), "png")
            if problem:
                problems.append(problem)
                continue
            found.append(by_dir[folder])
            check.png(png, manifest.image_shape, f"png {path}")
        if len(files) != len(expected_ids):
            problems.append(f"png index {rel}: lists {len(files)} files, expected {len(expected_ids)}; {REWRITE}")
        return found
