"""Cost per image of training and sampling, per model and image size: predict the bill before renting GPUs.

    python benchmarks/bench_cost.py                                   # cdcgan and stylegan at 32, 64, 128 px RGB
    python benchmarks/bench_cost.py --models stylegan --sizes 64 --threads 4 --steps 20
    python benchmarks/bench_cost.py --smoke-test                      # seconds: tiny sizes and step counts

For each (model, size) it builds the offline RGB benchmark set (``jobs/make_rgb_dataset.py``, a few images
per class: only their shape matters here) and an untrained checkpoint, then measures with the two existing
benchmarks' single-process loops, in this one process:
* training: ``bench_train.plain_pytorch_img_per_s``, the GAN train step (the same ``GANStep`` the Ray Train
  workers run) on the config's global batch;
* sampling: ``bench_sample.bare_loop``, latents + generator forward + uint8 + PNG encode.
It prints images/s and thread-ms per image (wall time x torch threads: the CPU cost when the machine is
otherwise idle) for both, and each model's cost relative to the first model at the same size. Multiply
thread-ms per image by the images you need for a CPU bill; for GPU figures run
``benchmarks/bench_train.py --set train.use_gpu=true`` and ``benchmarks/bench_sample.py --use-gpu`` on the GPU machine.
Untrained weights cost the same per image as trained ones.
Nothing is asserted: this is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = os.path.join(ROOT, "jobs")  # the RGB data-set script
BENCHMARKS = os.path.dirname(os.path.abspath(__file__))  # the sibling benchmarks
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a checkout without installing

from synthgen.cli_args import EXIT_CODES_HELP, run_guarded  # noqa: E402
from synthgen.errors import ConfigError  # noqa: E402
from synthgen.log import get_logger, setup_logging  # noqa: E402

# The widths measured: cdcgan's config default and stylegan's defaults (its CPU-sized ones).
MODEL_ARCH = {
    "cdcgan": {"g_channels": 32, "d_channels": 32},
    "stylegan": {"channel_base": 512, "channel_max": 128, "w_dim": 256},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's command line."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models", default="cdcgan,stylegan", help="comma list of registered conditional models")
    p.add_argument("--sizes", default="32,64,128", help="comma list of image sides (32, 64, 128)")
    p.add_argument("--batch-size", type=int, default=32, help="global training batch (default 32)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps per point (default 10)")
    p.add_argument("--samples", type=int, default=256, help="images sampled per point (default 256)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--smoke-test", action="store_true", help="32 px only, 2 steps, 32 samples")
    return p.parse_args(argv)


def _point(model: str, size: int, args: argparse.Namespace, work: str) -> dict:
    """Train and sample throughput of one (model, size)."""
    for folder in (JOBS, BENCHMARKS):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    import make_rgb_dataset
    from bench_sample import bare_loop
    from bench_train import plain_pytorch_img_per_s

    from synthgen.config import ExperimentConfig, from_dict
    from synthgen.train.untrained import write_random_checkpoint

    data = os.path.join(work, f"rgb{size}")
    if not os.path.isdir(data):
        make_rgb_dataset.main(["--out", data, "--resolution", str(size), "--max-per-class", "4", "--no-progress"])
    cfg = from_dict(
        ExperimentConfig,
        {
            "data": {"source": "imagefolder", "root": data, "channels": 3, "resolution": size},
            "model": {
                "name": model,
                "arch": MODEL_ARCH.get(model, {}),
                **({"loss": "bce", "r1_gamma": 0.0002 * size * size / args.batch_size} if model == "stylegan" else {}),
            },
            "train": {"num_workers": 1, "batch_size": args.batch_size},
        },
    )
    train = plain_pytorch_img_per_s(cfg, steps=args.steps, warmup=2, threads=args.threads)
    run = write_random_checkpoint(
        os.path.join(work, f"{model}{size}"), cfg, class_names=tuple(f"c{k}" for k in range(10))
    )
    sample = bare_loop(run, args.samples, batch_size=64, threads=args.threads)
    return {
        "model": model,
        "size": size,
        "train_img_per_s": train,
        "sample_img_per_s": sample,
        "train_thread_ms_per_img": 1000 * args.threads / train,
        "sample_thread_ms_per_img": 1000 * args.threads / sample,
    }


def bench(args: argparse.Namespace) -> int:
    """Measure every (model, size) and print the table.

    Raises:
        ConfigError: bad model or size lists (exit 2).
    """
    if args.smoke_test:
        args.sizes, args.steps, args.samples, args.batch_size = "32", 2, 32, 8
    try:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError as exc:
        raise ConfigError(f"--sizes {args.sizes!r} must be a comma list of integers, e.g. 32,64,128") from exc
    if not models or not sizes or min(args.steps, args.samples, args.threads, args.batch_size) < 1:
        raise ConfigError("need --models, --sizes and --steps/--samples/--threads/--batch-size >= 1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="synthgen-bench-cost-") as work:
        for size in sizes:
            for model in models:
                get_logger().info(f"measuring {model} at {size} px")
                t0 = time.perf_counter()
                rows.append(_point(model, size, args, work))
                rows[-1]["seconds"] = time.perf_counter() - t0
    print(
        f"{'model':<10}{'px':>5}{'train img/s':>13}{'train ms/img':>14}{'sample img/s':>14}"
        f"{'sample ms/img':>15}{'train vs 1st':>14}{'sample vs 1st':>15}"
    )
    for r in rows:
        first = next(x for x in rows if x["size"] == r["size"])
        r["train_cost_vs_first"] = r["train_thread_ms_per_img"] / first["train_thread_ms_per_img"]
        r["sample_cost_vs_first"] = r["sample_thread_ms_per_img"] / first["sample_thread_ms_per_img"]
        print(
            f"{r['model']:<10}{r['size']:>5}{r['train_img_per_s']:>13.1f}{r['train_thread_ms_per_img']:>14.2f}"
            f"{r['sample_img_per_s']:>14.1f}{r['sample_thread_ms_per_img']:>15.2f}{r['train_cost_vs_first']:>13.2f}x"
            f"{r['sample_cost_vs_first']:>14.2f}x"
        )
    print(f"ms/img = wall ms per image x {args.threads} torch thread(s); training batch {args.batch_size}")
    for r in rows:
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 1 runtime failure, 2 usage error."""
    args = parse_args(argv)
    setup_logging()
    return run_guarded("benchmarks/bench_cost.py", lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
