"""Store the transfer metric's rows as result files: one ``experiments/results/transfer/NAME/seedNN.json`` per seed.

    python experiments/transfer_results.py runs/cyclegan_rgb/eval/metrics.jsonl --name tint \\
        --command "synthgen evaluate --checkpoint runs/cyclegan_rgb --metrics transfer --set transfer.seeds=[0]"

Reads every ``transfer`` row of a ``metrics.jsonl`` (``synthgen evaluate --metrics transfer``) and writes, per seed of
each row, its arms' test accuracies, the halves it used, the translator and its settings, with the command and the
commit, atomically. A seed that already has a file is refused unless ``--overwrite`` (results are not rewritten by
accident). ``python experiments/tables.py`` then turns the files into the tables of experiments/transfer.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the sibling store_result, imported when run from a checkout
from store_result import head_commit, write_atomic  # noqa: E402

RESULTS = HERE / "results" / "transfer"


def seed_results(row: dict[str, Any]) -> list[dict[str, Any]]:
    """One result dict per seed of a stored ``transfer`` metric row."""
    r, settings = row["results"], row.get("settings", {})
    out = []
    for k, seed in enumerate(r["seeds"]):
        out.append(
            {
                "config": {"seed": int(seed), "settings": settings, "counts": row.get("counts", {})},
                "accuracy": {arm: float(s["values"][k]) for arm, s in r["arms"].items()},
                "halves": {
                    "source": r["halves"]["source"],
                    "translator_b": r["halves"]["translator_b"],
                    "source_parity": r["halves"]["source_parity"][k],
                    "overlap_with_translator_b": r["halves"]["overlap_with_translator_b"][k],
                },
                "translator": r["translator"],
                "checkpoint": row.get("source", {}),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("metrics", help="a metrics.jsonl written by synthgen evaluate --metrics transfer")
    p.add_argument("--name", required=True, help="the domain pair's folder under experiments/results/transfer/")
    p.add_argument("--command", required=True, help="the command that produced the rows (stored in each file)")
    p.add_argument("--overwrite", action="store_true", help="replace result files of seeds that already have one")
    args = p.parse_args(argv)
    rows = []
    with open(args.metrics, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    rows = [r for r in rows if r.get("metric") == "transfer"]
    if not rows:
        print(f"{args.metrics}: no transfer rows", file=sys.stderr)
        return 2
    commit = head_commit()
    for row in rows:
        for result in seed_results(row):
            path = RESULTS / args.name / f"seed{result['config']['seed']:02d}.json"
            if path.exists() and not args.overwrite:
                continue  # an earlier row's seed: kept as it was committed
            write_atomic(path, {**result, "command": args.command, "commit": commit})
            print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
