"""What one PNG-tree file costs to write, on a quiet disk and right after many files were deleted (numbers, not
asserts).

    python benchmarks/bench_file_writes.py                 # 5,000 files per measurement, 3 rounds, about 3 minutes
    python benchmarks/bench_file_writes.py --smoke-test    # 500 files, 1 round, no delete phase
    python benchmarks/bench_file_writes.py --dir /mnt/x    # on another disk (default: the system's temp folder)

Methods, each writing ``--files`` files of ``--size`` bytes into ten class folders, as the fleet's PNG tree does:
* ``writer``: ``Location.write_bytes``, what the fleet uses (on Linux an unnamed ``O_TMPFILE`` file linked into
  place, elsewhere the rename below);
* ``rename``: a temporary name in the same folder, then ``os.replace`` (the writer's fallback);
* ``plain``: open, write and close under the final name (not atomic: a crash can leave a torn file; the baseline).

Every method is measured on a quiet disk in each round, and then, if ``--delete`` is not 0, once per round right
after ``--delete`` files (default 50,000: one 50k sampling run's PNG tree) were written and deleted. On ext4 without
a journal (this VM's root disk) the inode allocator skips inodes deleted in the last 60 s, or in the last 360 s while
their inode table block is dirty (``RECENTCY_MIN`` and ``RECENTCY_DIRTY`` in the kernel's ``fs/ext4/ialloc.c``), and
pays a buffer lookup for each one it skips; new files written next to them keep that block dirty. So every file
created for up to six minutes after a mass delete pays for it. Measured here, it is the folders made first after the
delete that pay most (likely because ext4 puts a new folder in a block group with many free inodes, which is where
the delete freed them), so the method measured first in a delete phase pays the most; the order rotates between
rounds. All quiet phases run before the first delete (waiting out six minutes between rounds would be the
alternative), and each delete phase also sees the earlier rounds' deletes. Prints wall, user and system microseconds
per file, and each method's wall time over the plain write's in the same phase.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a checkout without installing

from synthgen.storage import Location  # noqa: E402

METHODS = ("writer", "rename", "plain")


def write_files(method: str, folder: str, files: int, data: bytes) -> tuple[float, float, float]:
    """(wall, user, system) seconds per file of writing ``files`` files with ``method`` into ``folder``."""
    dirs = [f"c{c}" for c in range(10)]
    for d in dirs:
        os.makedirs(os.path.join(folder, d))
    out = Location(folder)
    cpu0, t0 = os.times(), time.perf_counter()
    for i in range(files):
        rel = f"{dirs[i % 10]}/{i:012d}.png"
        path = os.path.join(folder, rel)
        if method == "writer":
            out.write_bytes(rel, data)
        elif method == "rename":
            tmp = os.path.join(folder, dirs[i % 10], f".{i:012d}.png.tmp-{os.urandom(6).hex()}")
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        else:
            with open(path, "wb") as fh:
                fh.write(data)
    wall, cpu1 = time.perf_counter() - t0, os.times()
    return wall / files, (cpu1.user - cpu0.user) / files, (cpu1.system - cpu0.system) / files


def _phase(name: str, base: str, methods: list[str], files: int, data: bytes) -> None:
    """Measure every method once into fresh folders under ``base`` and print them against the plain write."""
    walls = {}
    for m in methods:
        wall, user, system = write_files(m, os.path.join(base, m), files, data)
        walls[m] = wall
        print(
            f"{name}: {m:6s} wall {wall * 1e6:7.1f} us/file, user {user * 1e6:6.1f}, system {system * 1e6:7.1f}",
            flush=True,
        )
    print(f"{name}: wall / plain: " + ", ".join(f"{m} {walls[m] / walls['plain']:.2f}" for m in methods), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke-test", action="store_true", help="500 files per measurement, one round, no deletes")
    parser.add_argument("--files", type=int, default=0, help="files per measurement (default 5000)")
    parser.add_argument("--size", type=int, default=490, help="bytes per file (default: a 28 px grayscale PNG's)")
    parser.add_argument("--delete", type=int, default=-1, help="files deleted before the second phase (default 50000)")
    parser.add_argument(
        "--rounds", type=int, default=0, help="rounds (default 3: each method measured first after a delete once)"
    )
    parser.add_argument("--dir", default="", help="where to write (default: the system's temp folder)")
    args = parser.parse_args(argv)
    files = args.files or (500 if args.smoke_test else 5000)
    rounds = args.rounds or (1 if args.smoke_test else 3)
    delete = args.delete if args.delete >= 0 else (0 if args.smoke_test else 50_000)
    data = os.urandom(args.size)
    base = tempfile.mkdtemp(prefix="bench-file-writes-", dir=args.dir or None)
    print(
        f"bench_file_writes: {files} files of {args.size} bytes per measurement in {base}, {rounds} round(s); "
        f"delete phase: {delete} files"
    )
    try:
        for r in range(rounds):  # before any delete: a delete slows new files for up to six minutes (docstring)
            _phase(f"round {r}, quiet disk", os.path.join(base, f"r{r}-quiet"), list(METHODS), files, data)
        for r in range(rounds if delete else 0):
            write_files("plain", os.path.join(base, f"r{r}-bulk"), delete, data)
            t_deleted = time.perf_counter()
            shutil.rmtree(os.path.join(base, f"r{r}-bulk"))
            after = os.path.join(base, f"r{r}-after")
            # the first folders made after a delete land where it freed inodes and pay the most: rotate who goes first
            first = r % len(METHODS)
            order = list(METHODS[first:] + METHODS[:first])
            _phase(f"round {r}, just after deleting {delete} files", after, order, files, data)
            print(f"round {r}: that phase ended {time.perf_counter() - t_deleted:.1f} s after the delete", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
