"""``synthgen verify OUT``: re-read a sampled dataset and check it against its manifest.

Checks, for every shard in ``manifest.json`` and every format handler of the dataset's format
(``synthgen.shards.formats``): the file exists with the recorded size and sha256, and the handler's
own checks pass (Parquet: rows are exactly sample_ids [start, end) in order, labels are valid and
match ``label_name``, every PNG decodes to the manifest's image shape; PNG tree: every PNG the
shard's index lists exists in its class folder with the recorded sha256 and decodes). Over the
dataset, the total and per-class counts must equal the manifest's. Stray files that a reader would
pick up (extra shards, leftover temp files) are reported too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from synthgen.sample.plan import SamplePlan
from synthgen.errors import ShardError
from synthgen.shards import FORMATS, HANDLERS, MANIFEST_FILE, handlers_for, read_manifest
from synthgen.shards.integrity import check_file
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
        raise ShardError(f"{o.display(MANIFEST_FILE)}: format={manifest.format!r} is not one of {list(FORMATS)}; "
                         "nothing can be verified against it; re-run `synthgen sample` into this folder")
    plan = SamplePlan.from_dict(manifest.raw["plan"])
    problems: list[str] = []
    if [(s.sample_id_start, s.sample_id_end) for s in manifest.shards] != [(s.start, s.end) for s in plan.shards()]:
        problems.append(f"manifest: shard ranges do not tile sample_ids [0, {plan.num_samples}) as planned")
    handlers = handlers_for(manifest.format)
    counts: Counter = Counter()
    decoded = total = 0
    for shard in manifest.shards:
        total += shard.rows
        for handler in handlers:  # the primary handler (last) counts the labels
            data, problem = check_file(o, shard.part(handler.name), handler.what)
            if problem:
                problems.append(problem)
                continue
            primary = handler is handlers[-1]
            decoded += handler.verify(o, manifest, shard, data, decode, counts if primary else None, problems)
    if total != manifest.total or total != plan.num_samples:
        problems.append(f"manifest: shards hold {total} rows, manifest total is {manifest.total}")
    found = {name: counts.get(c, 0) for c, name in enumerate(manifest.class_names)}
    if not problems and found != manifest.per_class:
        problems.append(f"per-class counts {found} differ from the manifest's {manifest.per_class}")
    known = {ref.file for s in manifest.shards for ref in s.parts.values()}
    for rel in [r for h in HANDLERS.values() for r in o.list_files(h.folder)]:
        if rel not in known:
            kind = "leftover temp file" if TEMP_RE.match(rel.rsplit("/", 1)[-1]) else "file not in the manifest"
            problems.append(f"{rel}: {kind} (readers globbing the folder would pick it up); delete it")
    return VerifyReport(out=out, total=total, shards=len(manifest.shards), images_decoded=decoded,
                        problems=tuple(problems))
