"""``synthgen verify OUT``: re-read a sampled dataset and check it against its manifest.

Checks, for every shard in ``manifest.json``: the file exists with the recorded size and sha256;
the Parquet rows are exactly sample_ids [start, end) in order, labels are valid and match
``label_name``, every PNG decodes to the manifest's image shape; every PNG of the ``png/`` tree
(listed by the shard's index) exists in its class folder with the recorded sha256 and decodes;
and over the dataset, the total and per-class counts equal the manifest's. Stray files that a
reader would pick up (extra shards, leftover temp files) are reported too.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from synthgen.sample.manifest import read_manifest
from synthgen.sample.plan import SamplePlan
from synthgen.sample.writer import png_name
from synthgen.storage import TEMP_RE, Location, sha256_hex

FIX = "delete it and re-run the same `synthgen sample` command to rewrite it"


@dataclass(frozen=True)
class VerifyReport:
    out: str  # the dataset folder / URI
    total: int  # rows found
    shards: int  # shards checked
    images_decoded: int  # PNGs decoded (Parquet and png/ tree)
    problems: tuple[str, ...]  # one line per problem; empty when the dataset is intact

    @property
    def ok(self) -> bool:
        return not self.problems


def _decode_problem(data: bytes, shape: tuple[int, int, int]) -> str | None:
    """None if ``data`` is a PNG of ``shape`` (C, H, W), else what is wrong."""
    c, h, w = shape
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            mode, size = img.mode, img.size
    except Exception as exc:  # PIL raises many types for broken images
        return f"not a decodable PNG ({exc})"
    want_mode = "L" if c == 1 else "RGB"
    if mode != want_mode or size != (w, h):
        return f"image is {mode} {size[0]}x{size[1]}, expected {want_mode} {w}x{h}"
    return None


def _check_file(out: Location, rel: str, size: int, sha: str, what: str) -> tuple[bytes | None, str | None]:
    if not out.exists(rel):
        return None, f"{what} {rel}: missing; re-run the same `synthgen sample` command to write it"
    data = out.read_bytes(rel)
    if len(data) != size or sha256_hex(data) != sha:
        return None, (f"{what} {rel}: checksum mismatch (manifest: {size} bytes, sha256 {sha[:12]}...; file: "
                      f"{len(data)} bytes, sha256 {sha256_hex(data)[:12]}...): the file is corrupted; {FIX}")
    return data, None


def _check_parquet(data: bytes, rec: dict[str, Any], plan: SamplePlan, decode: bool,
                   counts: Counter, problems: list[str]) -> int:
    """Check one Parquet shard's rows; return the number of PNGs decoded."""
    rel = rec["file"]
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        problems.append(f"shard {rel}: unreadable Parquet ({exc}); {FIX}")
        return 0
    ids = table.column("sample_id").to_pylist()
    if ids != list(range(rec["sample_id_start"], rec["sample_id_end"])):
        problems.append(f"shard {rel}: sample_ids are not exactly [{rec['sample_id_start']}, {rec['sample_id_end']}) "
                        f"in order; {FIX}")
    labels, names = table.column("label").to_pylist(), table.column("label_name").to_pylist()
    images = table.column("image").combine_chunks()
    pngs, paths = images.field("bytes").to_pylist(), images.field("path").to_pylist()
    decoded = 0
    for sample_id, label, name, png, path in zip(ids, labels, names, pngs, paths):
        if not 0 <= label < len(plan.class_names) or plan.class_names[label] != name:
            problems.append(f"shard {rel}: sample {sample_id} has label {label} with label_name {name!r}; {FIX}")
            continue
        counts[label] += 1
        if path != png_name(sample_id):
            problems.append(f"shard {rel}: sample {sample_id} has image path {path!r}, expected {png_name(sample_id)!r}")
        if decode:
            decoded += 1
            if (why := _decode_problem(png, plan.image_shape)) is not None:
                problems.append(f"shard {rel}: sample {sample_id}: {why}; {FIX}")
    return decoded


def _check_png_tree(out: Location, data: bytes, rec: dict[str, Any], plan: SamplePlan, decode: bool,
                    counts: Counter | None, problems: list[str]) -> int:
    """Check the PNG files one shard index lists; return the number decoded."""
    rel = rec["png_index"]["file"]
    try:
        files = json.loads(data)["files"]
    except (ValueError, KeyError) as exc:
        problems.append(f"png index {rel}: unreadable ({exc}); {FIX}")
        return 0
    expected_ids = list(range(rec["sample_id_start"], rec["sample_id_end"]))
    by_dir = {d: c for c, d in enumerate(plan.label_dirs)}
    decoded = 0
    for sample_id, (path, size, sha) in zip(expected_ids, files):
        folder = path.split("/")[1] if path.count("/") == 2 else ""
        if path != f"png/{folder}/{png_name(sample_id)}" or folder not in by_dir:
            problems.append(f"png index {rel}: entry {path!r} is not png/<class folder>/{png_name(sample_id)}")
            continue
        png, problem = _check_file(out, path, size, sha, "png")
        if problem:
            problems.append(problem)
            continue
        if counts is not None:
            counts[by_dir[folder]] += 1
        if decode:
            decoded += 1
            if (why := _decode_problem(png, plan.image_shape)) is not None:
                problems.append(f"png {path}: {why}; {FIX}")
    if len(files) != len(expected_ids):
        problems.append(f"png index {rel}: lists {len(files)} files, expected {len(expected_ids)}; {FIX}")
    return decoded


def verify_output(out: str, decode: bool = True) -> VerifyReport:
    """Re-read the dataset in ``out`` and report every inconsistency with its manifest.

    Args:
        out: dataset folder or URI (holding manifest.json).
        decode: also decode every PNG (slower; catches corrupted images inside valid files).

    Returns:
        A VerifyReport; ``report.ok`` is False when anything is wrong.

    Raises:
        ShardError: no (readable) manifest, i.e. nothing to verify against.
    """
    o = Location(out)
    manifest = read_manifest(o)
    plan = SamplePlan.from_dict(manifest["plan"])
    problems: list[str] = []
    records = manifest["shards"]
    if [(r["sample_id_start"], r["sample_id_end"]) for r in records] != [(s.start, s.end) for s in plan.shards()]:
        problems.append(f"manifest: shard ranges do not tile sample_ids [0, {plan.num_samples}) as planned")
    counts: Counter = Counter()
    decoded = total = 0
    for rec in records:
        total += rec["rows"]
        if plan.writes_png:
            info = rec["png_index"]
            data, problem = _check_file(o, info["file"], info["bytes"], info["sha256"], "png index")
            if problem:
                problems.append(problem)
            else:
                decoded += _check_png_tree(o, data, rec, plan, decode, None if plan.writes_parquet else counts, problems)
        if plan.writes_parquet:
            data, problem = _check_file(o, rec["file"], rec["bytes"], rec["sha256"], "shard")
            if problem:
                problems.append(problem)
            else:
                decoded += _check_parquet(data, rec, plan, decode, counts, problems)
    if total != manifest["total"] or total != plan.num_samples:
        problems.append(f"manifest: shards hold {total} rows, manifest total is {manifest['total']}")
    found = {name: counts.get(c, 0) for c, name in enumerate(plan.class_names)}
    if not problems and found != manifest["per_class"]:
        problems.append(f"per-class counts {found} differ from the manifest's {manifest['per_class']}")
    known = {r["file"] for r in records} | {r["png_index"]["file"] for r in records if "png_index" in r}
    for rel in o.list_files("parquet") + o.list_files("png_index"):
        if rel not in known:
            kind = "leftover temp file" if TEMP_RE.match(rel.rsplit("/", 1)[-1]) else "file not in the manifest"
            problems.append(f"{rel}: {kind} (readers globbing the folder would pick it up); delete it")
    return VerifyReport(out=out, total=total, shards=len(records), images_decoded=decoded, problems=tuple(problems))
