"""``synthgen verify OUT``: re-read a sampled dataset and check it against its manifest.

Checks, for every shard in ``manifest.json`` and every format handler of the dataset's format
(``synthgen.shards.formats``): the file exists with the recorded size and sha256, and the handler's
own checks pass (Parquet: rows are exactly sample_ids [start, end) in order, labels are valid and
match ``label_name``, every PNG decodes to the manifest's image shape; PNG tree: every PNG the
shard's index lists exists in its class folder with the recorded sha256 and decodes). Over the
dataset, the total and per-class counts must equal the manifest's. Stray files that a reader would
pick up (extra shards, leftover temp files) are reported too. A dataset sampled ``--around`` real images must
have a ``source_id`` and ``source`` on every row (Parquet columns, or the PNG index's ``sources``), with
source_ids in [0, real set size), non-decreasing in sample_id order, and one label and one source string per
source_id; prior datasets must have none.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from synthgen.errors import ShardError
from synthgen.sample.plan import SamplePlan
from synthgen.shards import FORMATS, HANDLERS, MANIFEST_FILE, ShardManifest, handlers_for, read_manifest
from synthgen.shards.integrity import REWRITE, ShardCheck, check_file
from synthgen.shards.parquet import open_parquet
from synthgen.shards.png import PngFormat, read_png_sources
from synthgen.storage import TEMP_RE, Location


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
    manifest = read_manifest(o, check=False)  # inconsistencies are reported below, not raised
    if manifest.format not in FORMATS:
        raise ShardError(
            f"{o.display(MANIFEST_FILE)}: format={manifest.format!r} is not one of {list(FORMATS)}; "
            "nothing can be verified against it; re-run `synthgen sample` into this folder"
        )
    plan = SamplePlan.from_dict(manifest.raw["plan"])
    check = ShardCheck(decode)
    problems = check.problems
    if [(s.sample_id_start, s.sample_id_end) for s in manifest.shards] != [(s.start, s.end) for s in plan.shards()]:
        problems.append(f"manifest: shard ranges do not tile sample_ids [0, {plan.num_samples}) as planned")
    handlers = handlers_for(manifest.format)
    counts: Counter = Counter()
    total = 0
    for shard in manifest.shards:
        total += shard.rows
        for handler in handlers:
            data, problem = check_file(o, shard.part(handler.name), handler.what)
            if problem:
                problems.append(problem)
                continue
            labels = handler.verify(o, manifest, shard, data, check)
            if handler is handlers[-1]:  # the primary handler (last) counts the labels
                counts.update(labels)
    if total != manifest.total or total != plan.num_samples:
        problems.append(f"manifest: shards hold {total} rows, manifest total is {manifest.total}")
    found = {name: counts.get(c, 0) for c, name in enumerate(manifest.class_names)}
    if not problems and found != manifest.per_class:
        problems.append(f"per-class counts {found} differ from the manifest's {manifest.per_class}")
    if manifest.source_set is not None and not problems:
        _check_sources(o, manifest, problems)
    known = {ref.file for s in manifest.shards for ref in s.parts.values()}
    for rel in [r for h in HANDLERS.values() for r in o.list_files(h.folder)]:
        if rel not in known:
            kind = "leftover temp file" if TEMP_RE.match(rel.rsplit("/", 1)[-1]) else "file not in the manifest"
            problems.append(f"{rel}: {kind} (readers globbing the folder would pick it up); delete it")
    return VerifyReport(
        out=out, total=total, shards=len(manifest.shards), images_decoded=check.decoded, problems=tuple(problems)
    )


def _check_sources(o: Location, manifest: ShardManifest, problems: list[str]) -> None:
    """Dataset-wide provenance checks of an --around dataset (rows in sample_id order)."""
    import numpy as np

    ids, labels, names = [], [], []
    for shard in manifest.shards:
        if manifest.has_parquet:
            table = open_parquet(o, shard).read(columns=["label", "source_id", "source"])
            ids.append(table.column("source_id").to_numpy())
            labels.append(table.column("label").to_numpy())
            names += table.column("source").to_pylist()
        else:
            found = read_png_sources(o, manifest, shard)
            if found is None:
                problems.append(
                    f"png index {shard.part('png').file}: no sources in an --around / --translate dataset; {REWRITE}"
                )
                return
            ids.append(found[0])
            labels.append(PngFormat().read(o, manifest, shard).labels)
            names += found[1]
    source_ids, labels_all = np.concatenate(ids).astype(np.int64), np.concatenate(labels).astype(np.int64)
    size = int(manifest.source_set["size"])
    if len(source_ids) and (source_ids.min() < 0 or source_ids.max() >= size):
        problems.append(f"source_id outside [0, {size}) (the real set's size); {REWRITE}")
    if (np.diff(source_ids) < 0).any():
        problems.append(
            f"source_ids are not non-decreasing in sample_id order (each real image's variations are "
            f"consecutive); {REWRITE}"
        )
    starts = np.flatnonzero(np.r_[True, np.diff(source_ids) != 0])  # first row of each source
    group = np.cumsum(np.r_[False, np.diff(source_ids) != 0])  # [N] which run of equal source_ids a row is in
    names_arr = np.asarray(names, dtype=object)
    if (labels_all != labels_all[starts][group]).any() or (names_arr != names_arr[starts][group]).any():
        problems.append(f"rows of one source_id carry different labels or source strings; {REWRITE}")
