"""Store one finished run as a result file under experiments/results/, with the command that produced it.

    # a jobs/train_classifier.py result (its --set out=... JSON), as it is
    python experiments/store_result.py out/clf.json experiments/results/edges_1pct/k17/seed00.json --command "..."
    # the latest row of each named metric of a `synthgen evaluate` metrics.jsonl, flattened into one dict
    python experiments/store_result.py OUT/eval/metrics.jsonl experiments/results/edges_1pct/heldout/seed00.json \\
        --metrics fd,label_acc --command "..."

The file gains ``command`` and ``commit`` (the repository's HEAD when stored) and is written atomically. A result
that already exists is refused unless ``--overwrite``, so a result is never rewritten by accident.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def metric_results(path: Path, metrics: list[str]) -> dict[str, Any]:
    """The ``results`` of the latest row of each of ``metrics`` in a metrics.jsonl, merged (``per_class`` dropped,
    a nested dict flattened to dotted keys, e.g. ``upscaled.psnr``), plus each metric's ``counts`` under
    ``counts_<metric>``.

    Raises:
        ValueError: a metric has no row in the file.
    """
    rows: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[row["metric"]] = row  # later rows win
    out: dict[str, Any] = {}
    for name in metrics:
        if name not in rows:
            raise ValueError(f"{path} has no {name!r} row (it has {sorted(rows)})")
        for key, value in rows[name]["results"].items():
            if key == "per_class":
                continue
            if isinstance(value, dict):  # one level: what a table's column names
                out.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                out[key] = value
        out[f"counts_{name}"] = rows[name].get("counts", {})
    return out


def head_commit() -> str:
    """HEAD of the repository this file is in, or "" outside git."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def store(source: Path, dest: Path, command: str, metrics: list[str], overwrite: bool = False) -> dict[str, Any]:
    """Write ``dest`` from ``source`` (a result JSON, or with ``metrics`` a metrics.jsonl); returns what was written.

    Raises:
        FileExistsError: ``dest`` exists and not ``overwrite``.
        ValueError / OSError: an unreadable source.
    """
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} exists: results are not rewritten (pass --overwrite to replace it)")
    result = metric_results(source, metrics) if metrics else json.loads(source.read_text())
    result = {**result, "command": command, "commit": head_commit()}
    write_atomic(dest, result)
    return result


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` through a temp file and ``os.replace`` (no half-written result)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a result JSON, or a metrics.jsonl with --metrics")
    parser.add_argument("dest", type=Path, help="experiments/results/<study>/<arm>/seedNN.json")
    parser.add_argument("--command", required=True, help="the command that produced the source")
    parser.add_argument("--metrics", default="", help="comma list: take these metrics' latest rows of a metrics.jsonl")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing result file")
    args = parser.parse_args(argv)
    try:
        store(args.source, args.dest, args.command, [m for m in args.metrics.split(",") if m], args.overwrite)
    except (FileExistsError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
