"""The ``synthgen`` command: parse arguments -> build the config -> call one stage.

    synthgen train --config jobs/configs/fashion_mnist.yaml [--set train.steps=20000] [--dry-run] [--resume]
    synthgen sample --checkpoint runs/fashion_mnist --num-samples 100000 --out out/fmnist
    synthgen verify out/fmnist
    synthgen evaluate --checkpoint runs/fashion_mnist
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from synthgen import __version__
from synthgen.errors import SynthgenError

TRAIN_EPILOG = """\
examples:
  synthgen train --config jobs/configs/fashion_mnist.yaml
  synthgen train --config jobs/configs/fashion_mnist.yaml --set train.num_workers=4 --set train.steps=20000
  synthgen train --config jobs/configs/fashion_mnist.yaml --dry-run     # print the resolved config
  synthgen train --config jobs/configs/fashion_mnist.yaml --resume      # continue after a crash

Outputs go to <run.storage_path>/<run.name>/ (default runs/fashion_mnist/): checkpoint-NNNNNN/
(model.pt + config.yaml), metrics.jsonl (step, d_loss, g_loss, img_per_s), grids/grid-NNNNNN.png.
Every config key is listed by --dry-run; override any of them with --set section.key=value.
"""


def add_config_arguments(parser: argparse.ArgumentParser, config_required: bool = False) -> None:
    """Add the shared --config / --set / --dry-run options to a subcommand parser."""
    parser.add_argument("--config", required=config_required, metavar="YAML",
                        help="YAML config file (see jobs/configs/); defaults are used for missing keys")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. --set train.steps=20000 (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved, validated config and exit without running anything")


def _run_train(args: argparse.Namespace) -> int:
    from synthgen.config import ExperimentConfig, dump_yaml, load_config

    cfg = load_config(ExperimentConfig, args.config, args.overrides)
    if args.dry_run:
        print(dump_yaml(cfg), end="")
        return 0
    from synthgen.train.trainer import train

    result = train(cfg, resume=args.resume)
    print(f"checkpoint: {result.checkpoint_path}")
    return 0


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a GAN on real images with Ray Train DDP workers",
        description="Train a (class-conditional) GAN with Ray Train distributed data-parallel workers. "
        "Checkpoints every train.checkpoint_every steps; a killed worker is replaced and training "
        "continues from the latest checkpoint.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(parser)
    parser.add_argument("--resume", action="store_true",
                        help="continue the named run from its latest checkpoint (after the driver died)")
    parser.set_defaults(func=_run_train)


def _stage_registrars() -> list[Callable[[argparse._SubParsersAction], None]]:
    from synthgen import pipeline
    from synthgen.evaluate import commands as evaluate_commands
    from synthgen.sample import commands as sample_commands

    return [_register_train, sample_commands.register, evaluate_commands.register, pipeline.register]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subcommand per stage."""
    parser = argparse.ArgumentParser(
        prog="synthgen",
        description="Synthetic labelled training images: train a GAN with Ray Train, sample it into "
        "Parquet/PNG shards with a fleet of Ray actors, evaluate what the images are worth.",
    )
    parser.add_argument("--version", action="version", version=f"synthgen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _stage_registrars():
        register(subparsers)
    return parser


def smoke_sibling(config_path: str) -> str:
    """``jobs/configs/x.yaml`` -> ``jobs/configs/x_smoke.yaml`` (the minute-sized sibling).

    Raises:
        ConfigError: the sibling does not exist.
    """
    from synthgen.errors import ConfigError

    root, ext = os.path.splitext(config_path)
    if root.endswith("_smoke"):
        return config_path
    sibling = f"{root}_smoke{ext}"
    if not os.path.isfile(sibling):
        raise ConfigError(f"--smoke-test: {config_path!r} has no smoke-sized sibling {sibling!r}; create it")
    return sibling


def run_job(command: str, argv: Sequence[str]) -> int:
    """Entry point of ``jobs/<command>.py``: the CLI subcommand plus ``--smoke-test``.

    ``--smoke-test`` swaps ``--config X.yaml`` for its ``X_smoke.yaml`` sibling, so a Ray job can be
    checked end to end in about a minute on a CPU.
    """
    args = list(argv)
    if "--smoke-test" in args:
        args.remove("--smoke-test")
        try:
            where = args.index("--config") + 1
            args[where] = smoke_sibling(args[where])
        except (ValueError, IndexError):
            print(f"jobs/{command}.py: --smoke-test needs --config", file=sys.stderr)
            return 2
        except SynthgenError as exc:
            print(f"jobs/{command}.py: error: {exc}", file=sys.stderr)
            return 2
    return main([command, *args])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``synthgen`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SynthgenError as exc:
        print(f"synthgen {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"synthgen {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
