"""Where everything of a shard dataset lives, relative to its folder (OUT).

    OUT/plan.json                        written first: the plan a folder is being filled with
    OUT/parquet/shard-NNNNNN.parquet     format parquet | both
    OUT/png/<label dir>/<id:012d>.png    format png | both (an ImageFolder tree)
    OUT/png_index/shard-NNNNNN.json      format png | both: the files of one shard (its commit)
    OUT/manifest.json                    written last: the dataset is complete when it exists

Names are zero-padded so that they sort in sample_id order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PLAN_FILE = "plan.json"
MANIFEST_FILE = "manifest.json"
RERUN = "re-run `synthgen sample` into this folder"  # the fix of almost every broken-dataset error


@dataclass(frozen=True)
class Shard:
    """One shard: the sample_ids ``[start, end)`` of a dataset, written and committed as one unit."""

    index: int  # k, 0-based
    start: int  # first sample_id (inclusive)
    end: int  # last sample_id + 1 (exclusive)

    @property
    def rows(self) -> int:
        return self.end - self.start

    @property
    def name(self) -> str:
        """Zero-padded, sortable stem: ``shard-000042``."""
        return shard_name(self.index)


def shard_name(index: int) -> str:
    """Zero-padded, sortable stem of shard ``index``: ``shard-000042``."""
    return f"shard-{index:06d}"


def png_name(sample_id: int) -> str:
    """File name of a sample: its id zero-padded to 12 digits, e.g. ``000000000042.png``."""
    return f"{sample_id:012d}.png"


def png_path(label_dir: str, sample_id: int) -> str:
    """Path relative to OUT of a sample's PNG: ``png/<label dir>/<id:012d>.png``."""
    return f"png/{label_dir}/{png_name(sample_id)}"


def parse_png_path(rel: str) -> tuple[str, int]:
    """``(label dir, sample_id)`` of a ``[...]/png/<label dir>/<id>.png`` path.

    Raises:
        ValueError: the path does not end in ``<folder>/<integer>.png``.
    """
    parts = rel.rstrip("/").split("/")
    if len(parts) < 2 or not parts[-1].endswith(".png"):
        raise ValueError(f"{rel!r} is not <class folder>/<sample_id>.png")
    return parts[-2], int(parts[-1].removesuffix(".png"))


def is_relative(path: str) -> bool:
    """True when ``path`` stays inside the dataset folder (no absolute path, ``..`` or URI)."""
    return not (path.startswith("/") or ".." in path.split("/") or "://" in path)


def safe_label_dirs(class_names: Sequence[str]) -> tuple[str, ...]:
    """Folder-safe, unique class folder names: ``"T-shirt/top" -> "T-shirt_top"``.

    Characters outside ``[A-Za-z0-9 ._-]`` become ``_``; an empty or dot-only name becomes
    ``class_NNN``; a collision gets the class index appended.
    """
    dirs: list[str] = []
    for i, name in enumerate(class_names):
        safe = re.sub(r"[^A-Za-z0-9 ._-]", "_", name).strip()
        if not safe.strip("."):
            safe = f"class_{i:03d}"
        if safe in dirs:
            safe = f"{safe}_{i:03d}"
        dirs.append(safe)
    return tuple(dirs)
