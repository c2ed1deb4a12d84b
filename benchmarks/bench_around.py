"""Benchmark: `synthgen sample --around` against prior sampling, same checkpoint, same machine, one run.

    python benchmarks/bench_around.py --checkpoint runs/honest_1pct_seed00 --sizes 10000,100000

For each size N it runs the real CLI twice into fresh folders: prior sampling of N images, and
`--around train` with per_image = ceil(N / real images) (so about N images, the inversion included).
It prints wall time, images/s, the --around/prior throughput ratio and the peak resident memory of the
whole process tree (the driver, the local Ray cluster and every actor), sampled every 0.2 s: memory
that stays flat from the smallest to the largest N is what "flat" means.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time


def tree_rss(root_pid: int) -> int:
    """Resident bytes of ``root_pid`` and all its descendants, read from /proc (Linux)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):  # a process that ended while we listed
                pass
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm", encoding="utf-8") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total


def run_measured(argv: list[str]) -> tuple[float, int]:
    """Run ``argv``; return (wall seconds, peak RSS bytes of the process and all its descendants)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.2)  # a sampling interval, not a timing assumption: only the peak is kept
    stderr = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{stderr[-2000:]}")
    return time.perf_counter() - start, peak


def real_set_size(checkpoint: str) -> int:
    """How many real images `--around train` varies (read from a dry run's plan)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "synthgen.cli",
            "sample",
            "--checkpoint",
            checkpoint,
            "--around",
            "train",
            "--per-image",
            "1",
            "--out",
            tempfile.mkdtemp(),
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"^shards: .*\((\d+) in all\)", out, re.M)
    if not found:
        raise SystemExit("the dry run's plan did not say how many images it would write")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="run folder or checkpoint folder")
    parser.add_argument("--sizes", default="10000,100000", help="comma list of image counts")
    parser.add_argument("--num-actors", type=int, default=2, help="sampling actors")
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    args = parser.parse_args()
    base = [
        sys.executable,
        "-m",
        "synthgen.cli",
        "sample",
        "--checkpoint",
        args.checkpoint,
        "--format",
        "parquet",
        "--num-actors",
        str(args.num_actors),
    ]
    n_real = real_set_size(args.checkpoint)
    rows = []
    print(f"{'mode':8} {'images':>8} {'wall s':>8} {'img/s':>8} {'peak GB':>8}")
    for size in [int(s) for s in args.sizes.split(",")]:
        per_image = math.ceil(size / n_real)
        for mode, extra, n in (
            ("prior", ["--num-samples", str(size)], size),
            ("around", ["--around", "train", "--per-image", str(per_image)], per_image * n_real),
        ):
            out = os.path.join(tempfile.mkdtemp(prefix=f"bench-around-{mode}-"), "out")
            wall, peak = run_measured([*base, *extra, "--out", out])
            rows.append({"mode": mode, "images": n, "wall_s": wall, "img_per_s": n / wall, "peak_bytes": peak})
            print(f"{mode:8} {n:8d} {wall:8.1f} {n / wall:8.0f} {peak / 2**30:8.2f}", flush=True)
        prior, around = rows[-2], rows[-1]
        print(f"  around / prior throughput at {size}: {around['img_per_s'] / prior['img_per_s']:.2f}")
    for mode in ("prior", "around"):
        mine = [r for r in rows if r["mode"] == mode]
        print(
            f"{mode}: peak memory {mine[-1]['images']} vs {mine[0]['images']} images: "
            f"{mine[-1]['peak_bytes'] / mine[0]['peak_bytes']:.2f}x"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
