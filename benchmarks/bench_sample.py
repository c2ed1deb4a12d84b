"""Ray job: sampling throughput of the fleet vs a bare in-process loop, and the fleet's peak memory.

    python benchmarks/bench_sample.py --smoke-test          # small model and sizes, under a minute on 2 CPUs
    python benchmarks/bench_sample.py [--checkpoint RUN] [--num-samples 2000] [--num-actors 2] [--use-gpu]

Prints (numbers, not asserts):
* bare loop: latents + generator forward + uint8 + PNG encode in this process (no Ray, no files),
  with torch using every core and with one thread, at batch 256 and the sampler's default batch, and each of
  those again in a fresh process with glibc's allocator tuned as the fleet's actors tune theirs
  (``synthgen.allocator``); the best of the eight is the baseline;
* fleet: ``run_sample`` into Parquet+PNG shards on the same cores, at N and 10 N images, at the sampler's
  default batch: end-to-end images/s (actor start-up included) and steady images/s (after every actor loaded);
* ratio fleet/bare (goal >= 0.95) and peak memory of the fleet at N vs 10 N (goal: flat within 10%), both runs
  with the same images per shard (what the sampler holds in flight scales with the shard, not with N).

Rounds: the bare loops and the two fleet runs are measured in turn, ``--rounds`` times (3 by default); each
round's ratio compares the fleet with that round's own best bare loop, and the median over rounds is the
result. Measured once each, the two sides can land minutes apart on a machine whose speed drifts. Every round's
output stays on disk until the benchmark ends: on ext4 without a journal (this VM's disk) a new inode skips those
deleted in the last 60 s, or 360 s while their inode table block is dirty (``RECENTCY_MIN`` / ``RECENTCY_DIRTY`` in
the kernel's ``fs/ext4/ialloc.c``), and new files written next to them keep it dirty, so every file created for up to
six minutes after a mass delete pays for scanning past the deleted inodes (8-20x per file here,
``bench_file_writes.py``), a cost the bare loop, which writes no files, never sees. The delete at the end has the
same effect on whatever writes files next.

Memory is the peak of the summed RSS of this driver and every process it started (the local Ray
instance: GCS, raylet, actors, encode/write workers), sampled every 50 ms from /proc (Linux), and the
peak of their summed private memory (RssAnon: RSS counts each shared object-store page once in every
process that touched it, so it grows as more of the store has been used, without any more being held). With
RAY_ADDRESS set (an existing cluster) only the driver is visible, so start the benchmark locally.
Without ``--checkpoint`` an untrained checkpoint is written (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a checkout without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402

from synthgen.config import ExperimentConfig, from_dict  # noqa: E402
from synthgen.ray_init import init_ray  # noqa: E402
from synthgen.sample.config import ENCODE_PLACES, SampleConfig  # noqa: E402

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _process_tree(root_pid: int) -> tuple[list[int], set[int]]:
    """``root_pid`` and all its descendants, and which of them are Ray workers/actors, from a scan of /proc."""
    children: dict[int, list[int]] = {}
    worker: set[int] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                if fh.read(5) == b"ray::":  # Ray renames worker processes ray::<actor or task>
                    worker.add(int(name))
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    tree, stack = [], [root_pid]
    while stack:
        tree.append(stack.pop())
        stack.extend(children.get(tree[-1], []))
    return tree, worker


def _memory_bytes(pids: list[int], worker: set[int]) -> tuple[int, int, int]:
    """(summed RSS of ``pids``, of those the Ray workers/actors, and the private part of the sum: RSS less the
    shared file and shmem pages (RssAnon), which leaves out the object-store pages every process that touched them
    counts again), from /proc/<pid>/statm (a process that exited meanwhile counts 0)."""
    total = workers = private = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                resident, shared = (int(v) * _PAGE_BYTES for v in fh.read().split()[1:3])
        except (OSError, ValueError):
            continue
        total, private = total + resident, private + resident - shared
        workers += resident if pid in worker else 0
    return total, workers, private


class PeakMemory:
    """Background sampler of the process tree's memory: ``peak`` (summed RSS), ``peak_workers`` (of the Ray
    workers/actors) and ``peak_private`` (summed RssAnon), in bytes.

    Cheap enough to run beside the fleet it measures: a full /proc scan for the process tree once a second
    (``rescan_s``), then only the tree's statm files every ``interval`` s. Reading every process's status file every
    50 ms, as it did before, cost about 10 ms of CPU per sample, a fifth of one of the two cores the fleet was
    being measured on.
    """

    def __init__(self, interval: float = 0.1, rescan_s: float = 1.0) -> None:
        self.interval, self.rescan_s, self.peak, self.peak_workers, self.peak_private = interval, rescan_s, 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        scanned_at = -float("inf")
        while not self._stop.is_set():
            if time.perf_counter() - scanned_at >= self.rescan_s:
                tree, worker = _process_tree(os.getpid())
                scanned_at = time.perf_counter()
            total, workers, private = _memory_bytes(tree, worker)
            self.peak, self.peak_workers = max(self.peak, total), max(self.peak_workers, workers)
            self.peak_private = max(self.peak_private, private)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bare_loop(checkpoint: str, n: int, batch_size: int, threads: int, seed: int = 0) -> float:
    """Images/s of latents + forward + uint8 + PNG encode in this process (no Ray, no files)."""
    from synthgen.checkpoint import load_generator
    from synthgen.draws import labels_for, latents_for
    from synthgen.pixels import to_uint8
    from synthgen.shards import encode_batch

    torch.set_num_threads(threads)
    generator, info = load_generator(checkpoint)
    counts = [n // len(info.class_names) + (c < n % len(info.class_names)) for c in range(len(info.class_names))]
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            ids = np.arange(start, min(start + batch_size, n))
            z = torch.from_numpy(latents_for(ids, seed, generator.z_dim))  # [b, z]
            y = torch.from_numpy(labels_for(ids, counts, seed))  # [b]
            encode_batch(to_uint8(generator(z, y)).numpy())  # [b, C, H, W] -> b PNGs
    return n / (time.perf_counter() - t0)


def bare_loop_tuned(checkpoint: str, n: int, batch_size: int, threads: int) -> float:
    """``bare_loop`` in a fresh process whose allocator is tuned as the fleet's actors' are
    (``synthgen.allocator.keep_freed_memory``): the fleet is compared with the best of both."""
    import subprocess

    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from synthgen.allocator import keep_freed_memory; keep_freed_memory()\n"
        "import bench_sample; print(bench_sample.bare_loop(sys.argv[3], *map(int, sys.argv[4:])))"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    args = [ROOT, here, checkpoint, str(n), str(batch_size), str(threads)]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return float(proc.stdout.split()[-1])


def fleet_run(cfg: SampleConfig) -> tuple[float, float, PeakMemory]:
    """(end-to-end img/s, steady img/s, memory peaks) of one fleet run in a fresh local Ray instance (in the one
    already started when there is one: --smoke-test)."""
    import ray

    from synthgen.sample.run import run_sample

    # A fresh instance per size: both runs start from the same state (no idle workers left over).
    fresh_ray = not ray.is_initialized()
    if fresh_ray:
        init_ray(os.environ.get("RAY_ADDRESS", ""), log_to_driver=False)
    try:
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            result = run_sample(cfg)
            wall = time.perf_counter() - t0
    finally:
        if fresh_ray:
            ray.shutdown()
    stats = result.stats
    steady = cfg.num_samples / max(stats.seconds - stats.actors_ready_s, 1e-9)
    return cfg.num_samples / wall, steady, mem


def _round(
    checkpoint: str, cfg: Any, n: int, bare_n: int, batches: list[int], threads: list[int], tmp: str, r: int
) -> dict[str, Any]:
    """One round: every bare-loop variant, then the fleet at N and at 10 N images (fresh Ray each). The fleets'
    output stays in ``tmp`` until the benchmark ends (a delete would slow the next round's files: module docstring)."""
    bares = {(b, t, "default"): bare_loop(checkpoint, bare_n, b, t) for b in batches for t in threads}
    bares.update({(b, t, "tuned"): bare_loop_tuned(checkpoint, bare_n, b, t) for b in batches for t in threads})
    small = fleet_run(cfg(n, os.path.join(tmp, f"small{r}")))
    big = fleet_run(cfg(10 * n, os.path.join(tmp, f"big{r}")))
    return {"bares": bares, "small": small, "big": big}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="small model (g_channels 16) and sizes, one round, bare loops on every core only",
    )
    parser.add_argument("--checkpoint", default="", help="checkpoint to sample (default: an untrained one)")
    parser.add_argument("--num-samples", type=int, default=0, help="N of the small fleet run (10 N is the big one)")
    parser.add_argument("--num-actors", type=int, default=0, help="generator actors (default: one per CPU)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=0,
        help="ids per actor call, and the bare loop's batch (default: the fleet at the sampler's default batch, "
        f"{SampleConfig.batch_size}; the bare loop at 256 and at {SampleConfig.batch_size}, the better one counts)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="rounds of (bare loops, fleet N, fleet 10 N), interleaved so that both sides see the same machine; "
        "ratios are per round, the median is the result (default 3; 1 with --smoke-test). On a shared or "
        "throttled machine the bare loop's rate moves by a third between minutes, so one round can mislead",
    )
    parser.add_argument("--use-gpu", action="store_true", help="GPU actors and a GPU bare loop")
    parser.add_argument(
        "--encode-in",
        choices=ENCODE_PLACES,
        default=SampleConfig.encode_in,
        help=f"where the fleet PNG-encodes a batch: in a Ray task (the sampler's default, {SampleConfig.encode_in}) "
        "or in the generator actor; run it twice to compare the two",
    )
    parser.add_argument(
        "--images-per-shard",
        type=int,
        default=0,
        help="rows per shard of both fleet runs (default: the sampler's default, 10000); one value for both sizes, "
        "because a shard's encoded images wait in the object store until its write task runs: memory in flight grows "
        "with the shard, not with N. Small shards cost a write task, a Parquet file and an index each",
    )
    parser.add_argument(
        "--bare-images",
        type=int,
        default=0,
        help="images of each bare-loop measurement (default min(10 N, 20000): its rate does not depend on N; "
        "N with --smoke-test)",
    )
    args = parser.parse_args(argv)
    n = args.num_samples or (100 if args.smoke_test else 2000)
    per_shard = args.images_per_shard or SampleConfig.images_per_shard
    bare_n = args.bare_images or (n if args.smoke_test else min(10 * n, 20_000))  # smoke: short bare loops
    rounds = args.rounds or (1 if args.smoke_test else 3)
    cpus = os.cpu_count() or 1
    fleet_batch = args.batch_size or SampleConfig.batch_size
    bare_batches = [args.batch_size] if args.batch_size else sorted({256, SampleConfig.batch_size})

    checkpoint = args.checkpoint
    if not checkpoint:
        from synthgen.train.untrained import write_random_checkpoint

        model = {"z_dim": 32, "arch": {"g_channels": 16}} if args.smoke_test else {}
        checkpoint = write_random_checkpoint(
            tempfile.mkdtemp(prefix="bench-ckpt-"), from_dict(ExperimentConfig, {"model": model})
        )
    actors = args.num_actors or cpus
    # Same cores: actors share them with the PNG encoders; fractional requests keep every task schedulable.
    share = max(0.25, round((cpus - 0.5) / actors, 2))

    def cfg(num: int, out: str) -> SampleConfig:
        return SampleConfig(
            checkpoint=checkpoint,
            out=out,
            num_samples=num,
            format="both",
            images_per_shard=per_shard,
            num_actors=actors,
            batch_size=fleet_batch,
            cpus_per_actor=min(share, 1.0),
            use_gpu=args.use_gpu,
            encode_in=args.encode_in,
            progress=False,
        )

    # Torch threads = every core is the natural bare loop, but on a busy machine one thread can be faster:
    # measure both (and both batch sizes) and compare the fleet with the best one of the same round.
    # --smoke-test checks the machinery, not the figures: every core only, one Ray instance for both fleet runs
    threads = [cpus] if args.smoke_test else sorted({1, cpus})
    if args.smoke_test:
        init_ray(os.environ.get("RAY_ADDRESS", ""), log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp:
            results: list[dict[str, Any]] = []
            for r in range(rounds):
                results.append(_round(checkpoint, cfg, n, bare_n, bare_batches, threads, tmp, r))
    finally:
        if args.smoke_test:
            import ray

            ray.shutdown()
    _report(results, cfg(10 * n, ""), cpus, bare_n)
    return 0


def _report(results: list[dict[str, Any]], fleet: SampleConfig, cpus: int, bare_n: int) -> None:
    """Print every round's figures, then the medians of the per-round ratios (``fleet``: the 10 N run's config)."""
    mib, n = 1 / 2**20, fleet.num_samples // 10
    print(
        f"bench_sample: checkpoint {fleet.checkpoint}, {cpus} CPUs, {fleet.num_actors} actors x {fleet.cpus_per_actor} "
        f"CPU, fleet batch {fleet.batch_size}, format {fleet.format}, {fleet.images_per_shard} images per shard, PNGs "
        f"encoded in the {'actors' if fleet.encode_in == 'actor' else 'Ray tasks'} (encode_in {fleet.encode_in}), "
        f"{len(results)} round(s)"
    )
    steady_ratios, e2e_ratios, mem_ratios = [], [], []
    for r, res in enumerate(results):
        for (b, t, malloc), rate in res["bares"].items():
            print(
                f"round {r}: bare loop (in-process, no Ray, no files, batch {b}, {t} torch thread(s), allocator "
                f"{malloc}), {bare_n} images: {rate:.1f} img/s"
            )
        bare = max(res["bares"].values())
        for num, (e2e, steady, mem) in ((n, res["small"]), (10 * n, res["big"])):
            print(
                f"round {r}: fleet {num} images: end-to-end {e2e:.1f} img/s, steady {steady:.1f} img/s; peak memory "
                f"{mem.peak * mib:.0f} MiB RSS (driver + local Ray), of which Ray workers/actors "
                f"{mem.peak_workers * mib:.0f} MiB; private (RssAnon, no shared object-store pages) "
                f"{mem.peak_private * mib:.0f} MiB"
            )
        e2e_big, steady_big, mem_big = res["big"]
        mem_small = res["small"][2]
        steady_ratios.append(steady_big / bare)
        e2e_ratios.append(e2e_big / bare)
        mem_ratios.append(
            (
                mem_big.peak / max(mem_small.peak, 1),
                mem_big.peak_workers / max(mem_small.peak_workers, 1),
                mem_big.peak_private / max(mem_small.peak_private, 1),
            )
        )
        print(
            f"round {r}: ratio fleet/best bare loop ({10 * n} images): steady {steady_ratios[-1]:.2f}, "
            f"end-to-end {e2e_ratios[-1]:.2f}"
        )
    total, workers, private = (float(np.median([m[i] for m in mem_ratios])) for i in range(3))
    print(
        f"ratio fleet/best bare loop ({10 * n} images), median of {len(results)} round(s): steady "
        f"{np.median(steady_ratios):.2f}, end-to-end {np.median(e2e_ratios):.2f} (goal >= 0.95); per round: steady "
        f"{', '.join(f'{x:.2f}' for x in steady_ratios)}; end-to-end {', '.join(f'{x:.2f}' for x in e2e_ratios)}"
    )
    print(
        f"peak memory 10x run / 1x run, median: total {total:.3f}, workers {workers:.3f}, private {private:.3f} "
        "(goal: within 1.10)"
    )


if __name__ == "__main__":
    sys.exit(main())
