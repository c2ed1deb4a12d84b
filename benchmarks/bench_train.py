"""Training benchmark (a Ray job): Ray Train DDP vs a plain single-process PyTorch loop.

    ray job submit --working-dir . -- python benchmarks/bench_train.py --config jobs/configs/fashion_mnist.yaml
    python benchmarks/bench_train.py --config jobs/configs/fashion_mnist.yaml --steps 100 --smoke-test

Both sides run the same model, the same global batch (train.batch_size x train.num_workers), the same
GANStep code and the same total cores (the baseline gets num_workers x cpus_per_worker torch threads),
in this one run on this machine. Prints images/s of each, their ratio (goal >= 0.95) and the seconds
from launch to the first Ray Train step,
phase by phase (``timing.json``). Nothing is asserted: this is a measurement.

The train step's fast paths (train.channels_last, precision, tf32, fused_adam, compile) are config options
like any other: pass them with --set (e.g. --set train.precision=bf16); the output names them as set and
as resolved on each side (the baseline runs on the CPU, where "auto" means off).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the job's working dir

import numpy as np  # noqa: E402
import torch  # noqa: E402

from synthgen.cli_args import EXIT_CODES_HELP, add_config_arguments, config_path, run_guarded  # noqa: E402
from synthgen.config import ExperimentConfig, dump_yaml, load_config  # noqa: E402
from synthgen.log import setup_logging  # noqa: E402
from synthgen.train.layout import this_machine  # noqa: E402
from synthgen.train.trainer import with_layout  # noqa: E402


def plain_pytorch_img_per_s(cfg: ExperimentConfig, steps: int, warmup: int, threads: int) -> float:
    """Images/s of one process running GANStep on the global batch with ``threads`` torch threads."""
    from synthgen.data import load_images
    from synthgen.pixels import to_float
    from synthgen.train.step import build_gan_step

    t = cfg.train
    torch.set_num_threads(threads)
    data = load_images(cfg.data, "train")
    step_fn = build_gan_step(cfg, data.image_shape, data.num_classes, torch.device("cpu"))
    batch = t.batch_size * t.num_workers
    images = torch.from_numpy(np.ascontiguousarray(data.images))
    labels = torch.from_numpy(data.labels)
    gen = torch.Generator().manual_seed(0)
    start = 0.0
    for step in range(1, warmup + steps + 1):
        if step == warmup + 1:
            start = time.perf_counter()
        idx = torch.randint(len(data), (batch,), generator=gen)
        step_fn(to_float(images[idx]), labels[idx], step)
    return steps * batch / (time.perf_counter() - start)


def fast_paths_line(cfg: ExperimentConfig) -> str:
    """The train.* fast-path options as set (``--set train.precision=bf16`` etc.) and what they resolve to.

    The baseline always runs on the CPU; the Ray Train workers on CUDA when train.use_gpu is set.
    """
    from synthgen.train.fast_paths import resolve_fast_paths

    t = cfg.train
    asked = (
        f"channels_last={t.channels_last} precision={t.precision} tf32={t.tf32} "
        f"fused_adam={t.fused_adam} compile={t.compile}"
    )
    cpu = resolve_fast_paths(t, torch.device("cpu")).describe()
    line = f"set: {asked}\n{'':11}plain PyTorch (cpu): {cpu}"
    if t.use_gpu:
        line += f"\n{'':11}Ray Train (cuda): {resolve_fast_paths(t, torch.device('cuda')).describe()}"
    return line


# start-up phases in timing.json (the driver's, then rank 0's), in order, and what happens before each
STARTUP_PHASES = (
    ("preflight_time", "config + data checks on the driver (preflight)"),
    ("ray_ready_time", "Ray start (or join) + worker layout"),
    ("fit_time", "run folder + config written"),
    ("worker_start_time", "Ray Train controller, worker group, process group"),
    ("built_time", "data load + networks + step built on the worker"),
    ("first_step_time", "first training step"),
)


def startup_lines(timing: dict[str, float], launch: float) -> list[str]:
    """One line per start-up phase: seconds since the previous phase (``timing.json``'s wall times)."""
    lines, last = [], launch
    for key, what in STARTUP_PHASES:
        if key in timing:
            lines.append(f"  {what:<52} {timing[key] - last:7.2f} s")
            last = timing[key]
    return lines


def ray_train_img_per_s(cfg: ExperimentConfig) -> tuple[float, float, list[str]]:
    """(images/s over the logged steady state, seconds from launch to the first step, start-up phase lines) of a
    real run."""
    from synthgen.train.progress import METRICS_FILE, TIMING_FILE
    from synthgen.train.trainer import train

    launch = time.time()
    result = train(cfg)
    with open(os.path.join(result.run_dir, TIMING_FILE), encoding="utf-8") as fh:
        timing = json.load(fh)
    first_step_time = timing["first_step_time"]
    with open(os.path.join(result.run_dir, METRICS_FILE), encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    first, last = rows[0], rows[-1]  # the first row's interval holds the warm-up; measure after it
    global_batch = cfg.train.batch_size * cfg.train.num_workers
    img_per_s = (last["step"] - first["step"]) * global_batch / (last["time"] - first["time"])
    return img_per_s, first_step_time - launch, startup_lines(timing, launch)


def main(argv: list[str] | None = None) -> int:
    """Parse the shared config arguments plus --steps/--warmup, run both sides, print the comparison.

    Returns:
        0 ok, 1 runtime failure, 2 config error (``synthgen.cli_args.run_guarded``).
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_CODES_HELP
    )
    add_config_arguments(
        parser,
        default_config="jobs/configs/fashion_mnist.yaml",
        config_help="training config YAML (default jobs/configs/fashion_mnist.yaml)",
        dry_run_help="print the resolved config of the Ray Train side and exit",
    )
    parser.add_argument(
        "--steps", type=int, default=120, help="timed steps on each side (default 120; 8 with --smoke-test)"
    )
    parser.add_argument(
        "--warmup", type=int, default=10, help="untimed warm-up steps of the baseline (default 10; 2 with --smoke-test)"
    )
    args = parser.parse_args(argv)
    setup_logging()
    return run_guarded("benchmarks/bench_train.py", lambda: _bench(args))


def _bench(args: argparse.Namespace) -> int:
    """The benchmark once the arguments are parsed; typed errors propagate to ``run_guarded``."""
    path = config_path(args)
    steps, warmup = (8, 2) if args.smoke_test else (args.steps, args.warmup)
    # Named, not created: training creates it, and a --dry-run leaves nothing behind.
    storage = os.path.join(tempfile.gettempdir(), f"synthgen-bench-{os.getpid()}-{int(time.time())}")
    log_every = max(1, steps // 6)
    cfg = load_config(
        ExperimentConfig,
        path,
        [
            *args.overrides,
            f"train.steps={steps + log_every}",
            f"train.log_every={log_every}",
            f"train.checkpoint_every={steps + log_every}",
            f"train.sample_every={steps + log_every}",
            f"run.storage_path={storage}",
            f"run.name=bench-{int(time.time())}",
        ],
    )
    # an automatic layout (train.num_workers / cpus_per_worker 0), resolved for this machine as `synthgen train`
    # resolves it for its cluster, so both sides get the same workers, batch and cores
    cfg = with_layout(cfg, this_machine())
    if args.dry_run:
        print(dump_yaml(cfg), end="")
        return 0
    t = cfg.train
    print(
        f"model {cfg.model.name} {cfg.data.resolution}px, {t.num_workers} workers x {t.cpus_per_worker} CPU, "
        f"batch {t.batch_size}/worker, {steps} timed steps",
        flush=True,
    )
    print(f"fast paths {fast_paths_line(cfg)}", flush=True)
    cores = max(1, int(t.num_workers * t.cpus_per_worker))
    # Same total cores as the workers; 1 thread too, because on a small busy machine torch's own
    # threading can be slower than one thread — the ratio is taken against the faster baseline.
    baselines = {n: plain_pytorch_img_per_s(cfg, steps, warmup, n) for n in sorted({1, cores})}
    ray_ips, to_first_step, phases = ray_train_img_per_s(cfg)
    best = max(baselines.values())
    print()
    for n, ips in baselines.items():
        print(f"{f'plain PyTorch (1 process, {n} thread(s))':<44} {ips:10.1f} img/s")
    print(f"{f'Ray Train DDP ({t.num_workers} workers)':<44} {ray_ips:10.1f} img/s")
    print(f"{'ratio Ray / best plain (goal >= 0.95)':<44} {ray_ips / best:10.2f}")
    print(f"{'launch -> first Ray Train step':<44} {to_first_step:10.1f} s, of which:")
    print("\n".join(phases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
