"""Cost per image of training and sampling, per model and image size: predict the bill before renting GPUs.

    python benchmarks/bench_cost.py                                   # 4 models at 32, 64, 128 px RGB
    python benchmarks/bench_cost.py --models stylegan --sizes 64 --threads 4 --steps 20
    python benchmarks/bench_cost.py --models pix2pix,cyclegan         # the image -> image models only
    python benchmarks/bench_cost.py --models cdcgan,cyclegan,pixelda,pixelda_ms   # the unpaired translators
    python benchmarks/bench_cost.py --models srgan_x2,srgan           # the upscalers, x2 and x4 (size = output side)
    python benchmarks/bench_cost.py --models cdcgan,srgan,srgan_subpixel   # SRResNet's x4 output vs ESPCN's
    python benchmarks/bench_cost.py --smoke-test                      # seconds: tiny sizes and step counts

For each (model, size) it builds the offline RGB benchmark set (``jobs/make_rgb_dataset.py``, a few images
per class: only their shape matters here) and measures, in this one process:
* noise models (cdcgan, stylegan), with the two existing benchmarks' single-process loops on an untrained
  checkpoint: training = ``bench_train.plain_pytorch_img_per_s``, the GAN train step (the same ``GANStep`` the
  Ray Train workers run) on the config's global batch; sampling = ``bench_sample.bare_loop``, latents +
  generator forward + uint8 + PNG encode;
* image -> image models (pix2pix: 1-channel outlines -> RGB, as ``data.pairs: edges``; cyclegan and pixelda:
  gray -> RGB, as jobs/configs/cyclegan_rgb.yaml / pixelda_rgb.yaml), on fresh networks: training =
  ``TranslationStep`` (the step the Ray Train workers run) on random batches in [-1, 1] of the same global batch;
  sampling = ``translate_rows`` (the fleet's ``--translate`` call, one output per input) + PNG encode. A cyclegan
  step translates the batch both ways (A -> B and B -> A, plus the round trips); it counts as one image per A input;
* upscalers (``srgan`` x4, ``srgan_x2``, ``srgan_subpixel``: x4 with ESPCN's output; the size is the output
  side, the input is size / factor), the same way as the image -> image models, with srgan's default losses
  (L1 + the feature loss through an untrained judge-sized SmallCNN + adversarial).
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

import numpy as np  # noqa: E402
import torch  # noqa: E402

from synthgen.cli_args import EXIT_CODES_HELP, run_guarded  # noqa: E402
from synthgen.config import ExperimentConfig  # noqa: E402
from synthgen.errors import ConfigError  # noqa: E402
from synthgen.log import get_logger, setup_logging  # noqa: E402

# The widths measured: those the repo's configs train. cdcgan: its config default; stylegan: its defaults (the
# CPU-sized ones); pix2pix: jobs/configs/pix2pix_edges.yaml (default widths, class-conditional outlines);
# cyclegan: jobs/configs/cyclegan_rgb.yaml (half the reference's width, 4 blocks).
MODEL_ARCH = {
    "cdcgan": {"g_channels": 32, "d_channels": 32},
    "stylegan": {"channel_base": 512, "channel_max": 128, "w_dim": 256},
    "pix2pix": {"class_conditional": True},
    "cyclegan": {"g_channels": 32, "g_blocks": 4, "d_channels": 32},
    # pixelda: jobs/configs/pixelda_rgb.yaml (cyclegan_rgb's widths, full resolution, the task classifier)
    "pixelda": {"g_channels": 32, "g_blocks": 4, "d_channels": 32},
    "pixelda_ms": {"g_channels": 32, "g_blocks": 4, "d_channels": 32, "mode_seeking_weight": 1.0},  # + mode seeking
    # srgan: jobs/configs/srgan_rgb128.yaml (8 blocks of 64); srgan_x2 the same network upscaling by 2
    "srgan": {"factor": 4, "g_channels": 64, "g_blocks": 8, "d_channels": 32},
    "srgan_x2": {"factor": 2, "g_channels": 64, "g_blocks": 8, "d_channels": 32},
    # the light x4 upscaler: ESPCN's sub-pixel output (no conv at the output side), 4 blocks of 32
    # (experiments/configs/srgan_rgb32_subpixel.yaml's network)
    "srgan_subpixel": {"factor": 4, "g_channels": 32, "g_blocks": 4, "upsampler": "subpixel", "d_channels": 32},
    # lighter still, for a cascade at >= 3x a direct 128 px generator's images per second: 4 blocks of 24, 2 of 32
    "srgan_subpixel_b4c24": {"factor": 4, "g_channels": 24, "g_blocks": 4, "upsampler": "subpixel", "d_channels": 32},
    "srgan_subpixel_b2c32": {"factor": 4, "g_channels": 32, "g_blocks": 2, "upsampler": "subpixel", "d_channels": 32},
}


def model_name(token: str) -> str:
    """The registered model of a ``--models`` token (``srgan_x2``, ``srgan_subpixel`` -> ``srgan``, ``pixelda_ms`` ->
    ``pixelda``)."""
    return token.split("_")[0]


NUM_CLASSES = 10  # the RGB benchmark set's classes (Fashion-MNIST's)
SAMPLE_BATCH = 64  # forward batch of both sampling loops (translate_rows' chunk_size: the same)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's command line."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--models",
        default="cdcgan,stylegan,pix2pix,cyclegan",
        help="comma list of noise and image -> image models (default cdcgan,stylegan,pix2pix,cyclegan)",
    )
    p.add_argument("--sizes", default="32,64,128", help="comma list of image sides (32, 64, 128)")
    p.add_argument("--batch-size", type=int, default=32, help="global training batch (default 32)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps per point (default 10)")
    p.add_argument("--samples", type=int, default=256, help="images sampled per point (default 256)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--smoke-test", action="store_true", help="32 px only, batch 8, 2 steps, 32 samples")
    return p.parse_args(argv)


def _rgb_set(size: int, work: str) -> str:
    """The offline RGB benchmark set at ``size`` px (built once per run)."""
    if JOBS not in sys.path:
        sys.path.insert(0, JOBS)
    import make_rgb_dataset

    data = os.path.join(work, f"rgb{size}")
    if not os.path.isdir(data):
        make_rgb_dataset.main(["--out", data, "--resolution", str(size), "--max-per-class", "4", "--no-progress"])
    return data


def _noise_point(model: str, size: int, args: argparse.Namespace, work: str) -> tuple[float, float]:
    """(train img/s, sample img/s) of a noise model, with bench_train's and bench_sample's loops."""
    if BENCHMARKS not in sys.path:
        sys.path.insert(0, BENCHMARKS)
    from bench_sample import bare_loop
    from bench_train import plain_pytorch_img_per_s

    from synthgen.config import from_dict
    from synthgen.train.untrained import write_random_checkpoint

    cfg = from_dict(
        ExperimentConfig,
        {
            "data": {"source": "imagefolder", "root": _rgb_set(size, work), "channels": 3, "resolution": size},
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
        os.path.join(work, f"{model}{size}"), cfg, class_names=tuple(f"c{k}" for k in range(NUM_CLASSES))
    )
    return train, bare_loop(run, args.samples, batch_size=SAMPLE_BATCH, threads=args.threads)


def translation_config(model: str, size: int, batch_size: int, rgb_root: str) -> ExperimentConfig:
    """The validated config of an image -> image model on the RGB set: pix2pix on its outlines (A, 1 channel)
    -> the images (B, RGB); cyclegan from the set in grayscale (A) -> the set in RGB (B)."""
    from synthgen.config import load_config

    data = ["data.source=imagefolder", f"data.root={rgb_root}", f"data.resolution={size}"]
    if model == "pix2pix":
        domains = [*data, "data.channels=3", "data.pairs=edges"]
    elif model_name(model) == "srgan":  # B: the RGB set at `size`; A: its downsample by the factor
        domains = [*data, "data.channels=3", "data.pairs=downsample"]
    else:  # a second domain from data_b, as jobs/configs/cyclegan_rgb.yaml (its A: Fashion-MNIST, gray)
        data_b = ["data_b.source=imagefolder", f"data_b.root={rgb_root}", f"data_b.resolution={size}"]
        domains = [*data, "data.channels=1", *data_b, "data_b.channels=3"]
    arch = [f"model.arch.{k}={json.dumps(v)}" for k, v in MODEL_ARCH.get(model, {}).items()]
    train = ["train.num_workers=1", f"train.batch_size={batch_size}"]
    return load_config(ExperimentConfig, None, [f"model.name={model_name(model)}", *domains, *arch, *train])


def translation_shapes(cfg: ExperimentConfig) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(A's shape as G takes it, B's shape), as ``write_random_checkpoint`` derives them."""
    from synthgen.translation import translator_shapes

    side = cfg.data.resolution
    b = cfg.data_b if cfg.data_b is not None else cfg.data  # data.pairs=edges / downsample: B = data's images
    out_shape = (b.channels, side, side)
    return translator_shapes(cfg, out_shape)[0], out_shape


def translation_train_img_per_s(cfg: ExperimentConfig, steps: int, warmup: int, threads: int) -> float:
    """Images/s of one process running ``TranslationStep`` on random batches of the global batch.

    A cyclegan step translates the batch both ways; it counts one image per A input, like a pix2pix step.
    """
    from synthgen.models.classifier import SmallCNN
    from synthgen.train.translation_step import build_translation_step

    torch.set_num_threads(threads)
    in_shape, out_shape = translation_shapes(cfg)
    # srgan's feature loss runs a judge-sized SmallCNN; an untrained one costs what the trained judge does
    judge = SmallCNN(out_shape[0], NUM_CLASSES, out_shape[-1]).eval().requires_grad_(False)
    step_fn = build_translation_step(cfg, in_shape, out_shape, NUM_CLASSES, torch.device("cpu"), classifier=judge)
    batch = cfg.train.batch_size * cfg.train.num_workers
    gen = torch.Generator().manual_seed(0)
    start = 0.0
    for step in range(1, warmup + steps + 1):
        if step == warmup + 1:
            start = time.perf_counter()
        # drawn inside the clock, as bench_train indexes and converts its batch there (both cost about nothing)
        a = torch.rand((batch, *in_shape), generator=gen) * 2 - 1  # [B, C_a, H, W] in [-1, 1]
        b = torch.rand((batch, *out_shape), generator=gen) * 2 - 1  # [B, C_b, H, W]
        labels = torch.randint(NUM_CLASSES, (batch,), generator=gen)  # [B]
        step_fn(a, b, labels, step, torch.Generator().manual_seed(step))
    return steps * batch / (time.perf_counter() - start)


def translation_sample_img_per_s(cfg: ExperimentConfig, n: int, batch_size: int, threads: int, seed: int = 0) -> float:
    """Images/s of ``translate_rows`` (one output per input) + PNG encode in this process (no Ray, no files).

    The counterpart of ``bench_sample.bare_loop``: the forward batch, uint8 and the PNG encode are the same; the
    input images are made before the clock, as the fleet loads them (and draws pix2pix's outlines) before its
    actors translate.
    """
    from synthgen.models import build_translation_models
    from synthgen.shards import encode_batch
    from synthgen.translation import translate_rows, variation_kind

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    in_shape, out_shape = translation_shapes(cfg)
    generator = build_translation_models(cfg.model, in_shape, out_shape, NUM_CLASSES)[0].eval()
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, 256, (n, *in_shape), dtype=np.uint8)  # [n, C_a, H, W]: the speed ignores the pixels
    labels = rng.integers(0, NUM_CLASSES, n, dtype=np.int64)  # [n]
    variation = variation_kind(generator, cfg.data)  # pix2pix: dropout on, as sampled
    # translate_rows computes whole chunks (padding rows of a short last one are dropped, as in the fleet):
    # no chunk larger than n, and the default n (256) is a whole number of chunks, so nothing extra is timed
    batch_size = min(batch_size, n)
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        rows = translate_rows(
            generator,
            inputs,
            labels,
            start,
            min(start + batch_size, n),
            per_image=1,
            seed=seed,
            variation=variation,
            chunk_size=batch_size,
        )  # [b, C_b, H, W] uint8
        encode_batch(rows)  # b PNGs
    return n / (time.perf_counter() - t0)


def png_encode_ms(size: int, n: int = 64, channels: int = 3, seed: int = 0) -> float:
    """Wall ms per image of the PNG encode alone (the fleet's level 6) at ``size`` px: part of every sample row
    above, the floor under any generator's sampling cost at that size. The pixels: bicubic 4x of noise, what an
    untrained upscaler makes."""
    import torch.nn.functional as F

    from synthgen.shards import encode_batch

    gen = torch.Generator().manual_seed(seed)
    small = torch.rand((n, channels, max(size // 4, 1), max(size // 4, 1)), generator=gen) * 255  # [n, C, s/4, s/4]
    images = F.interpolate(small, size=(size, size), mode="bicubic").clamp(0, 255).to(torch.uint8).numpy()
    t0 = time.perf_counter()
    encode_batch(images)  # [n, C, size, size] -> n PNGs
    return 1000 * (time.perf_counter() - t0) / n


def _point(model: str, size: int, args: argparse.Namespace, work: str) -> dict:
    """Train and sample throughput of one (model, size)."""
    from synthgen.models import get_model_spec

    if get_model_spec(model_name(model)).translation:
        cfg = translation_config(model, size, args.batch_size, _rgb_set(size, work))
        train = translation_train_img_per_s(cfg, steps=args.steps, warmup=2, threads=args.threads)
        sample = translation_sample_img_per_s(cfg, args.samples, batch_size=SAMPLE_BATCH, threads=args.threads)
    else:
        train, sample = _noise_point(model, size, args, work)
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
        f"{'model':<15}{'px':>5}{'train img/s':>13}{'train ms/img':>14}{'sample img/s':>14}"
        f"{'sample ms/img':>15}{'train vs 1st':>14}{'sample vs 1st':>15}"
    )
    for r in rows:
        first = next(x for x in rows if x["size"] == r["size"])
        r["train_cost_vs_first"] = r["train_thread_ms_per_img"] / first["train_thread_ms_per_img"]
        r["sample_cost_vs_first"] = r["sample_thread_ms_per_img"] / first["sample_thread_ms_per_img"]
        print(
            f"{r['model']:<15}{r['size']:>5}{r['train_img_per_s']:>13.1f}{r['train_thread_ms_per_img']:>14.2f}"
            f"{r['sample_img_per_s']:>14.1f}{r['sample_thread_ms_per_img']:>15.2f}{r['train_cost_vs_first']:>13.2f}x"
            f"{r['sample_cost_vs_first']:>14.2f}x"
        )
    print(f"ms/img = wall ms per image x {args.threads} torch thread(s); training batch {args.batch_size}")
    for size in sizes:  # what every sample row pays for its PNGs, whatever the network
        print(f"PNG encode alone (RGB, level 6): {png_encode_ms(size):.2f} ms/img at {size} px")
    if any(r["model"] == "cyclegan" for r in rows):
        print("cyclegan train: one image per A input (a step translates the batch both ways)")
    for r in rows:
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 1 runtime failure, 2 usage error."""
    args = parse_args(argv)
    setup_logging()
    threads = torch.get_num_threads()
    try:
        return run_guarded("benchmarks/bench_cost.py", lambda: bench(args))
    finally:  # each measurement sets its own thread count; a caller in the same process keeps its own
        torch.set_num_threads(threads)


if __name__ == "__main__":
    sys.exit(main())
