"""CLI of the sampling stage: ``synthgen sample`` and ``synthgen verify``.

``synthgen.cli`` calls ``register(subparsers)``. Config precedence: SampleConfig defaults <
``--config`` YAML < explicit flags < ``--set key=value`` overrides. A flag's argparse dest is its
SampleConfig key. Typed errors propagate to ``synthgen.cli_args.run_guarded`` (exit 1 or 2).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from synthgen.cli_args import (
    add_command,
    add_config_arguments,
    add_no_progress_argument,
    config_path,
    flag_values,
    smoke_checkpoint,
)
from synthgen.config import apply_overrides, config_data, from_dict
from synthgen.errors import ShardError
from synthgen.log import get_logger
from synthgen.sample.config import FORMATS, SampleConfig

SAMPLE_EPILOG = """\
output layout (OUT):
  parquet/shard-000000.parquet   sample_id int64, label int64, label_name string,
                                 image struct<bytes: PNG, path: "<sample_id:012d>.png">
                                 (Hugging Face `datasets` Image/ClassLabel features in the metadata)
  png/<class folder>/<sample_id:012d>.png   torchvision ImageFolder reads it as is (it numbers
                                 classes by sorted folder name; manifest.json's label_dirs maps back)
  png_index/shard-000000.json    the files of each PNG shard with sizes and sha256
  plan.json                      what this folder is being filled with (written first)
  manifest.json                  counts, shards (rows, id range, bytes, sha256), checkpoint digest,
                                 seed, full config (written last: present = complete)
  inversion/chunk-000000.npz     --around: inverted latents and errors of each chunk of real images

sampling around real images (--around):
  --around train uses the checkpoint's own training images (the same subset it was trained on);
  --around FILE a data-config YAML (DataConfig keys: source, root, resolution, channels, max_images or
  class_counts, subset_seed; optional split: train). The test split and classes other than the checkpoint's are
  refused. Each real image i is inverted into the generator (z_i: --inversion-steps Adam steps from the
  best of --inversion-restarts prior draws, or --encoder-steps from the run's encoder when it has one),
  then varied: image (i, j) = G(z_i + sigma * eps(seed, i, j), y_i), j < --per-image. Sample ids list the
  real images in order, each followed by its variations; N = per_image x real images (--num-samples, if
  given, must equal it). --class-weights uniform or FILE rebalances: per-class totals follow the weights
  exactly, so rare classes get more variations per image (class c's total spread evenly over its images,
  the first ones in real-set order getting one more). Parquet rows gain source_id (the real image's
  index) and source (its path, or "<split>:<index>"); manifest.json's "around" records the real set
  (kind, root, split, digest), the inversion settings and the mean reconstruction error. Inverted chunks
  are kept under OUT/inversion/, so a killed run loses at most the chunks in flight.

translating images (--translate DATA, a pix2pix, cyclegan, pixelda or srgan checkpoint; --upscale-from DATA for srgan):
  every image of DATA becomes --per-image K translations into the checkpoint's domain B, keeping its label:
  sample id i * K + j is variation j of input image i. DATA: train / test (that split of the checkpoint's
  domain A data), a data-config YAML (DataConfig keys, optional split: train | test), an ImageFolder root
  (its files must already have the checkpoint's input size and channels; a YAML with resolution / channels
  converts them), or a synthgen dataset folder. pix2pix varies by its decoder dropout (masks seeded per
  chunk of sample ids); on outlines (data.pairs: edges) DATA's images are outlined first and variation
  j >= 1 deforms the outline elastically, so one outline renders K shapes; pixelda by its noise input (a
  new noise vector per sample, seeded per chunk of ids); cyclegan and srgan are
  deterministic (K = 1). An srgan checkpoint upscales DATA's images, which must have its low resolution.
  Rows gain source_id and source as with --around; manifest.json's "translate" records the input set and
  the domains. Images of another shape, or (class-conditional pix2pix) other classes: exit 2.

Image i is a pure function of (checkpoint, seed, filter, i): the bytes do not depend on --num-actors,
--batch-size or retries. With --filter judge:T, image i is the first of its candidate latents the
judge accepts (manifest.json's "filter" records the acceptance rate). Re-running the same command into
the same OUT writes only the missing shards; a different config into a non-empty OUT is refused unless --overwrite.

examples:
  synthgen sample --checkpoint runs/fashion_mnist --num-samples 100000 --out synthetic/fm --format both
  synthgen sample --config jobs/configs/sample.yaml --set num_actors=4 --dry-run
  synthgen sample --checkpoint runs/fashion_mnist --num-samples 60000 --out synthetic/fm-judged --filter judge:0.9
  synthgen sample --checkpoint runs/fashion_mnist --around train --per-image 8 --sigma 0.7 \\
      --out synthetic/fm-around --format both
  synthgen sample --checkpoint runs/fashion_mnist --around data.yaml --class-weights uniform --dry-run
  synthgen sample --checkpoint runs/cyclegan_rgb --translate train --out synthetic/fm-as-rgb --format both
  synthgen sample --checkpoint runs/pix2pix_edges --translate test --per-image 4 --out synthetic/outlines
  synthgen sample --checkpoint runs/srgan_rgb128 --upscale-from synthetic/fm-rgb32 --out synthetic/fm-rgb128
  synthgen sample --checkpoint runs/rgb32 --upscale runs/srgan_rgb128 --num-samples 10000 --out synthetic/rgb128
  synthgen verify synthetic/fm
  python jobs/sample.py --config jobs/configs/sample.yaml --smoke-test     # the Ray job: sample, then verify

"""


def register(subparsers: Any) -> None:
    """Add the ``sample`` and ``verify`` subcommands to an argparse subparsers object."""
    _register_sample(subparsers)
    _register_verify(subparsers)


def _register_sample(subparsers: Any) -> None:
    p = add_command(
        subparsers,
        "sample",
        "sample a trained generator into Parquet/PNG shards with a fleet of Ray actors",
        "Sample N labelled images from a trained checkpoint into sharded Parquet and/or PNG "
        "files, with a fleet of Ray inference actors. Exactly reproducible, safe to kill and re-run.",
        SAMPLE_EPILOG,
    )
    add_config_arguments(
        p,
        config_help="flat YAML of SampleConfig keys (e.g. jobs/configs/sample.yaml)",
        set_example="cpus_per_actor=0.25",
        dry_run_help="print the resolved config and the plan (class counts, shards), then exit "
        "without writing anything",
    )
    _add_output_arguments(p.add_argument_group("what to sample and where"))
    _add_latent_arguments(p.add_argument_group("how latents are drawn and kept"))
    _add_around_arguments(p.add_argument_group("sampling around real images (--around)"))
    _add_translate_arguments(p.add_argument_group("translating and upscaling images (--translate, --upscale)"))
    _add_run_arguments(p.add_argument_group("execution"))
    p.set_defaults(func=cmd_sample)


def _add_output_arguments(p: argparse._ArgumentGroup) -> None:
    """Checkpoint, output, count, format, classes."""
    p.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="run folder (its latest checkpoint), checkpoint-NNNNNN folder, or URI (s3://, gs://, file://)",
    )
    p.add_argument("--out", metavar="OUT", help="output folder or URI (s3://bucket/prefix, file:///abs/path)")
    p.add_argument(
        "--num-samples",
        type=int,
        metavar="N",
        help="number of images; sample_ids 0..N-1 (default 10000; with --around: per_image x real images)",
    )
    p.add_argument(
        "--format", choices=FORMATS, help="parquet shards, a png/ ImageFolder tree, or both (default parquet)"
    )
    p.add_argument("--images-per-shard", type=int, metavar="K", help="rows per shard (default 10000)")
    p.add_argument("--seed", type=int, help="dataset seed: keys every latent and the label order (default 0)")
    p.add_argument(
        "--classes",
        metavar="all|LIST",
        help="'all' or a comma list of class names or indices, e.g. 'Sneaker,Bag' or '7,8' (default all)",
    )
    p.add_argument(
        "--class-weights",
        metavar="auto|uniform|data|FILE",
        help="class proportions: uniform, data (the "
        "training set's class frequencies; with --around the real set's) or a YAML/JSON file {class name: "
        "weight}; auto (default) = uniform, or with --around the real set's; per-class counts are exact "
        "(largest-remainder rounding)",
    )


def _add_latent_arguments(p: argparse._ArgumentGroup) -> None:
    """Truncation, the judge filter, fixed InfoGAN codes."""
    p.add_argument(
        "--truncation",
        type=float,
        metavar="PSI",
        help="truncation psi in (0, 1]: pulls each latent toward "
        "its centre in the generator's latent space (z toward 0; stylegan: w toward its class's mean w); "
        "1.0 = off (default)",
    )
    p.add_argument(
        "--filter",
        metavar="judge:T",
        help="keep only images the judge (the evaluation stage's "
        "classifier, trained on the checkpoint's real training split and cached) gives probability >= T "
        "for their label, e.g. judge:0.9: each image tries up to filter_max_candidates (16) latents, "
        "deterministically; labels and per-class counts stay exact (default: no filter)",
    )
    p.add_argument(
        "--code",
        dest="codes",
        action="append",
        metavar="NAME=VALUE",
        help="fix an InfoGAN code of the "
        "checkpoint's generator (model.codes) for every sample, e.g. --code style=2 (categorical: an "
        "integer in [0, size)) or --code thickness=0.5 (continuous: in [-1, 1]); repeatable; codes not "
        "named keep their per-sample draws (default: none fixed)",
    )


def _add_around_arguments(p: argparse._ArgumentGroup) -> None:
    """Inversion of real images and the noise around them."""
    p.add_argument(
        "--around",
        metavar="train|FILE",
        help="sample around real images instead of the prior: train "
        "(the checkpoint's own training images) or a data-config YAML; see 'sampling around real images'",
    )
    p.add_argument(
        "--per-image",
        type=int,
        metavar="K",
        help="variations per real image (--around, default 8) or per input image (--translate, default 1)",
    )
    p.add_argument(
        "--sigma",
        type=float,
        metavar="S",
        help="--around: latent noise around each inverted image (default 0.7; 0 = the reconstructions)",
    )
    p.add_argument(
        "--inversion-steps",
        type=int,
        metavar="T",
        help="--around: Adam steps per real image without an encoder (default 300)",
    )
    p.add_argument(
        "--encoder",
        metavar="auto|none|DIR",
        help="--around: start inversions from the run's encoder "
        "(auto, the default, when it has one; then --set encoder_steps=20 steps at --set encoder_lr=0.01 "
        "follow), none = optimisation only, or an encoder folder",
    )


def _add_translate_arguments(p: argparse._ArgumentGroup) -> None:
    """Translating images with a pix2pix / cyclegan / srgan checkpoint."""
    p.add_argument(
        "--translate",
        metavar="DATA",
        help="translate every image of DATA with a pix2pix / cyclegan / pixelda checkpoint instead of drawing from "
        "noise: train / test (the checkpoint's domain A split), a data-config YAML, an ImageFolder root, or a synthgen "
        "dataset folder; see 'translating images'",
    )
    p.add_argument(
        "--upscale-from",
        metavar="DATA",
        dest="translate",
        help="upscale every image of DATA with an srgan checkpoint (--translate under the name an upscaler's user "
        "looks for): DATA as for --translate, at the checkpoint's low resolution (train / test: its own images "
        "shrunk to it)",
    )
    p.add_argument(
        "--upscale",
        metavar="SR_RUN",
        help="noise sampling: upscale every image the --checkpoint generator makes with this srgan run in the same "
        "actor call (the cascade: a small class GAN + one upscaler); its input must be the generator's image shape",
    )


def _add_run_arguments(p: argparse._ArgumentGroup) -> None:
    """Actors, batches, devices, overwriting, progress, verification."""
    p.add_argument("--num-actors", type=int, metavar="A", help="generator actors (default 2)")
    p.add_argument(
        "--batch-size",
        type=int,
        metavar="B",
        help="sample ids per actor call, a multiple of chunk_size (64) (default 512)",
    )
    p.add_argument("--use-gpu", action="store_true", default=None, help="one GPU per actor (gpus_per_actor)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="replace a dataset made with a different "
        "config in OUT (without it such a run is refused and nothing is touched)",
    )
    add_no_progress_argument(p)
    p.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join (default: RAY_ADDRESS or a local one)")
    p.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="re-read every shard and PNG after sampling; exit 1 when anything is off (jobs/sample.py turns it on)",
    )


def _register_verify(subparsers: Any) -> None:
    v = add_command(
        subparsers,
        "verify",
        "re-read a sampled dataset and check counts, checksums, sample ids and PNG decodability",
        "Check every shard of OUT against OUT/manifest.json: sizes and sha256, sample_ids exactly "
        "0..N-1 in shard order, labels and names, per-class counts, and that every PNG decodes. Exits 1 and "
        "lists each problem (with its fix) when anything is wrong.",
    )
    v.add_argument("out", metavar="OUT", help="dataset folder or URI (the --out of `synthgen sample`)")
    v.add_argument("--no-decode", dest="decode", action="store_false", help="skip decoding PNGs (checksums only)")
    v.set_defaults(func=cmd_verify)


def resolve_config(args: argparse.Namespace) -> SampleConfig:
    """Build the validated SampleConfig from --config, explicit flags and --set overrides.

    Raises:
        ConfigError: unreadable YAML, unknown key, wrong type or invalid value.
    """
    overrides = list(getattr(args, "overrides", []) or [])
    path = config_path(args)
    data = config_data(path, flag_values(args, SampleConfig))
    cfg = from_dict(SampleConfig, apply_overrides(data, overrides), "sample")
    cfg.validate()
    if getattr(args, "smoke_test", False) and not getattr(args, "dry_run", False):
        untrained = smoke_checkpoint(cfg.checkpoint, path, "sampling")
        if untrained:
            cfg = from_dict(SampleConfig, apply_overrides(data, [*overrides, f"checkpoint={untrained}"]), "sample")
            cfg.validate()
    return cfg


def cmd_sample(args: argparse.Namespace) -> int:
    """``synthgen sample``: returns 0; typed errors propagate to ``cli_args.run_guarded``.

    Raises:
        ConfigError: bad flags or config (exit 2); other SynthgenErrors when sampling fails (exit 1).
        ShardError: ``--verify`` found problems in the shards written (exit 1).
    """
    cfg = resolve_config(args)
    if args.dry_run:
        from synthgen.sample.dry_run import print_dry_run

        return print_dry_run(cfg, getattr(args, "smoke_test", False))
    from synthgen.sample.run import run_sample

    result = run_sample(cfg)
    m = result.manifest
    print(
        f"sampled {m['total']} images in {m['num_shards']} shards into {result.out} "
        f"({result.shards_written} written, {result.shards_reused} already complete)"
    )
    if result.stats is not None:
        s = result.stats
        print(
            f"fleet: {s.seconds:.1f}s, actors ready after {s.actors_ready_s:.1f}s, actor restarts "
            f"{s.actor_restarts}, actors replaced {s.actors_replaced}, shard retries {s.shard_retries}"
        )
    if result.stale_removed:
        print(f"removed {len(result.stale_removed)} stale temp file(s) of an interrupted run")
    print(f"per class: {m['per_class']}")
    t = m.get("translate")
    if t:
        print(
            f"translated {t['input']['size']} input images ({t['input']['kind']} {t['input']['spec']}) with "
            f"{t['model']}, {t['per_image']} variation(s) each"
        )
    a = m.get("around")
    if a:
        print(
            f"around {a['images_varied']} real "
            f"images ({a['real']['kind']} {a['real']['spec']}), sigma {a['sigma']:g}: reconstruction mse "
            f"{a['start_mse']:.4f} -> {a['reconstruction_mse']:.4f}"
        )
    f = m.get("filter")
    if f:
        rate = f["acceptance_rate"]
        print(
            f"filter {f['spec']}: {f['candidates']} latents drawn for {m['total']} images (acceptance "
            f"{rate:.1%}), {f['below_threshold']} kept below the threshold as the best of {f['max_candidates']}"
            if rate is not None
            else f"filter {f['spec']}"
        )
    if getattr(args, "verify", False):
        _verify_written(cfg.out)
    return 0


def _verify_written(out: str) -> None:
    """Re-read what was just written (``--verify``).

    Raises:
        ShardError: listing the first problems and the fix.
    """
    from synthgen.sample.verify import verify_output

    report = verify_output(out)
    if not report.ok:
        raise ShardError(
            f"the shards in {out} did not verify ({len(report.problems)} problems): "
            + "; ".join(report.problems[:5])
            + f"; `synthgen verify {out}` lists every problem"
        )
    get_logger().info(
        f"verify OK: {report.total} images in {report.shards} shards, {report.images_decoded} PNGs decoded"
    )


def cmd_verify(args: argparse.Namespace) -> int:
    """``synthgen verify OUT``: 0 when intact, 1 (listing every problem) when not.

    Raises:
        SynthgenError: OUT cannot be read at all (no manifest, unreachable URI): exit 1 or 2.
    """
    from synthgen.sample.verify import verify_output

    report = verify_output(args.out, decode=args.decode)
    if report.ok:
        print(
            f"OK: {report.out}: {report.total} images in {report.shards} shards, checksums match, "
            f"{report.images_decoded} PNGs decoded"
        )
        return 0
    print(f"FAILED: {report.out}: {len(report.problems)} problem(s):", file=sys.stderr)
    for line in report.problems[:50]:
        print(f"  - {line}", file=sys.stderr)
    if len(report.problems) > 50:
        print(f"  ... and {len(report.problems) - 50} more", file=sys.stderr)
    return 1
