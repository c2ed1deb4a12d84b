"""Benchmark: GAN inversion by optimisation only vs encoder + k refinement steps, side by side.

    python benchmarks/bench_invert.py --checkpoint runs/fashion_mnist [--num-images 500] [--steps 0,10,30]
    python benchmarks/bench_invert.py --smoke-test          # untrained tiny generator + encoder, seconds on a CPU

On the same real images in one process (the checkpoint's training split by default, the images
``synthgen sample --around`` inverts), it times
* optimisation only: ``invert(G, x, y, steps=--opt-steps)`` (300, the default: best of 8 prior restarts,
  then Adam on the pixel error);
* encoder + k: ``invert(G, x, y, init=encode(E, x, y), steps=k)`` for each k of ``--steps``,
and prints images inverted per wall second and per CPU second of this process (the steadier figure on a
shared machine; with ``--threads 1`` it is the compute cost), the mean reconstruction MSE (pixels in
[-1, 1]), the MSE at the start, both throughput ratios vs optimisation only and the MSE ratio, then one
JSON line per row (numbers, not asserts). The goal of
issue 14: the same reconstruction error at >= 10x the throughput. The encoder is the one
``synthgen train-encoder --checkpoint RUN`` wrote for the checkpoint (exit 1 naming that command when
there is none). Timings share the machine with whatever else runs: compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a checkout without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402

from synthgen.cli_args import EXIT_CODES_HELP, run_guarded  # noqa: E402
from synthgen.errors import CheckpointError, ConfigError  # noqa: E402
from synthgen.log import get_logger, setup_logging  # noqa: E402
from synthgen.sample.config import SampleConfig  # noqa: E402

SAME_ERROR_TOLERANCE = 0.05  # "the same reconstruction error": within 5% of optimisation only's MSE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's command line."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--checkpoint",
        metavar="RUN",
        help="run folder or checkpoint-NNNNNN folder with an encoder "
        "(synthgen train-encoder); not needed with --smoke-test",
    )
    p.add_argument("--num-images", type=int, default=500, metavar="N", help="real images inverted (default 500)")
    p.add_argument(
        "--steps", default="0,10,20,30", metavar="K,K", help="refinement steps after the encoder (default 0,10,20,30)"
    )
    p.add_argument("--opt-steps", type=int, default=300, metavar="S", help="steps of optimisation only (default 300)")
    p.add_argument(
        "--split",
        choices=("train", "test"),
        default="train",
        help="real images of the checkpoint's data "
        "(train: what --around inverts and the encoder saw; test: unseen images)",
    )
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate on z, both methods (default 0.05)")
    p.add_argument(
        "--refine-lr",
        type=float,
        default=SampleConfig.encoder_lr,
        help="learning rate of the k "
        f"refinement steps (default {SampleConfig.encoder_lr}, sampling's encoder_lr; 0 = --lr)",
    )
    p.add_argument("--batch-size", type=int, default=1000, help="images optimised together (default 1000)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--seed", type=int, default=0, help="seed of the image choice and the restarts")
    p.add_argument(
        "--smoke-test",
        action="store_true",
        help="untrained tiny generator and a 20-step encoder, "
        "few images and steps: checks the machinery, not the figures",
    )
    return p.parse_args(argv)


def _smoke_setup() -> tuple[str, int, int, str]:
    """An untrained tiny checkpoint with a 20-step encoder; returns (run folder, images, opt steps, k list)."""
    from synthgen.config import ExperimentConfig, from_dict
    from synthgen.invert.encoder import EncoderConfig
    from synthgen.invert.encoder_train import train_encoder
    from synthgen.train.untrained import write_random_checkpoint

    run = tempfile.mkdtemp(prefix="synthgen-bench-invert-")
    cfg = from_dict(ExperimentConfig, {"model": {"z_dim": 16, "arch": {"g_channels": 8, "d_channels": 8}}})
    write_random_checkpoint(run, cfg)
    train_encoder(EncoderConfig(checkpoint=run, steps=20, channels=8, real_data="none", progress=False))
    return run, 32, 20, "0,5"


def _time(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result) of ``fn()``.

    CPU seconds are the steadier cost on a shared machine (other jobs stretch the wall time of whichever
    row they overlap); with ``--threads 1`` they are the compute cost itself.
    """
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, time.process_time() - cpu, out


def bench(args: argparse.Namespace) -> int:
    """Run both methods on the same images and print the table.

    Raises:
        ConfigError: bad arguments (exit 2). CheckpointError: no checkpoint or no encoder for it (exit 1).
    """
    from synthgen.checkpoint import load_generator
    from synthgen.data import load_images
    from synthgen.invert.encoder import encode, load_encoder
    from synthgen.invert.inversion import invert

    checkpoint, num, opt_steps, steps_text = args.checkpoint, args.num_images, args.opt_steps, args.steps
    if args.smoke_test:
        checkpoint, num, opt_steps, steps_text = _smoke_setup()
    if not checkpoint:
        raise ConfigError("pass --checkpoint RUN (a run folder with an encoder) or --smoke-test")
    try:
        ks = [int(k) for k in steps_text.split(",") if k.strip()]
    except ValueError as exc:
        raise ConfigError(f"--steps {steps_text!r} must be a comma list of integers, e.g. 0,10,30") from exc
    if num < 1 or opt_steps < 0 or not ks or min(ks) < 0:
        raise ConfigError("need --num-images >= 1, --opt-steps >= 0 and --steps of integers >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    generator, info = load_generator(checkpoint)
    loaded = load_encoder(checkpoint)
    if loaded is None:
        raise CheckpointError(
            f"{checkpoint!r} has no encoder for its latest checkpoint; train one first: "
            f"synthgen train-encoder --checkpoint {checkpoint}"
        )
    encoder, enc_info = loaded
    data = load_images(info.config.data, args.split)
    pick = np.sort(np.random.default_rng(args.seed).permutation(len(data.images))[: min(num, len(data.images))])
    x, y = data.images[pick], data.labels[pick]  # [n, C, H, W] uint8, [n]
    get_logger().info(
        f"inverting {len(x)} {args.split} images of {info.path} (step {info.step}); encoder "
        f"{enc_info.path}; torch threads {torch.get_num_threads()}"
    )
    rows = []
    secs, cpu, inv = _time(
        lambda: invert(generator, x, y, steps=opt_steps, lr=args.lr, seed=args.seed, batch_size=args.batch_size)
    )
    rows.append(
        {
            "method": "optimisation only",
            "steps": opt_steps,
            "seconds": secs,
            "cpu_seconds": cpu,
            "mse": inv.mse,
            "start_mse": inv.start_mse,
        }
    )
    refine_lr = args.refine_lr or args.lr
    for k in ks:
        secs, cpu, inv = _time(
            lambda k=k: invert(
                generator, x, y, steps=k, lr=refine_lr, batch_size=args.batch_size, init=encode(encoder, x, y)
            )
        )
        rows.append(
            {
                "method": "encoder + k",
                "steps": k,
                "seconds": secs,
                "cpu_seconds": cpu,
                "mse": inv.mse,
                "start_mse": inv.start_mse,
            }
        )
    _report(rows, len(x), enc_info.train_cpu_seconds)
    return 0


def _report(rows: list[dict], n: int, train_cpu_seconds: float) -> None:
    """Print the table, one JSON line per row, whether the issue's target is met, and the encoder's break-even.

    The break-even of a row is the number of images from which its total CPU cost, the encoder's one-off
    training included, falls below optimisation only's: train_cpu / (opt cost per image - its cost per image).
    """
    base = rows[0]
    print(
        f"{'method':<20}{'steps':>6}{'img/s':>9}{'img/cpu-s':>11}{'mse':>9}{'start_mse':>11}{'speedup':>9}"
        f"{'cpu-speedup':>13}{'mse/opt':>9}"
    )
    for r in rows:
        r["images_per_s"] = n / r["seconds"]
        r["images_per_cpu_s"] = n / max(r["cpu_seconds"], 1e-9)
        r["speedup"] = base["seconds"] / r["seconds"]
        r["cpu_speedup"] = base["cpu_seconds"] / max(r["cpu_seconds"], 1e-9)
        r["mse_ratio"] = r["mse"] / base["mse"]
        saving = (base["cpu_seconds"] - r["cpu_seconds"]) / n  # CPU-s saved per image
        # None: this row costs as much as optimisation only per image, so the encoder never pays for itself
        r["break_even_images"] = (train_cpu_seconds / saving if saving > 0 else None) if r is not base else 0.0
        r["encoder_train_cpu_seconds"] = train_cpu_seconds
        print(
            f"{r['method']:<20}{r['steps']:>6}{r['images_per_s']:>9.1f}{r['images_per_cpu_s']:>11.1f}"
            f"{r['mse']:>9.4f}{r['start_mse']:>11.4f}{r['speedup']:>8.1f}x{r['cpu_speedup']:>12.1f}x"
            f"{r['mse_ratio']:>9.3f}"
        )
    for r in rows:
        print(json.dumps({"num_images": n, **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}}))
    met = [
        r for r in rows[1:] if min(r["speedup"], r["cpu_speedup"]) >= 10 and r["mse_ratio"] <= 1 + SAME_ERROR_TOLERANCE
    ]
    print(
        f"target (MSE within {SAME_ERROR_TOLERANCE:.0%} of optimisation only at >= 10x its throughput): "
        + (f"met by k={', '.join(str(r['steps']) for r in met)}" if met else "NOT met")
    )
    if train_cpu_seconds > 0:
        print(
            f"encoder training cost {train_cpu_seconds:.0f} CPU-s; it pays for itself from "
            + ", ".join(
                ("never" if r["break_even_images"] is None else f"{r['break_even_images']:.0f} images")
                + f" (k={r['steps']})"
                for r in rows[1:]
            )
        )
    else:
        print("encoder training cost not recorded (an encoder written before synthgen recorded it)")


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 1 runtime failure, 2 usage error."""
    args = parse_args(argv)
    setup_logging()
    return run_guarded("benchmarks/bench_invert.py", lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
