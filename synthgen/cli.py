"""The ``synthgen`` command: parse arguments -> build the config -> call one stage.

    synthgen train --config jobs/configs/fashion_mnist.yaml [--set train.steps=20000] [--dry-run] [--resume]
    synthgen sample --checkpoint runs/fashion_mnist --num-samples 100000 --out out/fmnist
    synthgen verify out/fmnist
    synthgen evaluate --checkpoint runs/fashion_mnist
    synthgen pipeline --config jobs/configs/pipeline.yaml

This module only assembles the parser from each stage's ``register`` and runs the chosen command
through ``cli_args.run_guarded`` (the one place errors become exit codes). ``jobs/*.py`` call
``run_job``: the same subcommand with the job's default config.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from synthgen import __version__
from synthgen.cli_args import EXIT_CODES_HELP, add_command, add_config_arguments, config_path, run_guarded
from synthgen.log import setup_logging

TRAIN_EPILOG = """\
examples:
  synthgen train --config jobs/configs/fashion_mnist.yaml
  synthgen train --config jobs/configs/fashion_mnist.yaml --set train.num_workers=4 --set train.steps=20000
  synthgen train --config jobs/configs/fashion_mnist.yaml --dry-run     # print the resolved config
  synthgen train --config jobs/configs/fashion_mnist.yaml --resume      # continue after a crash

Outputs go to <run.storage_path>/<run.name>/ (default runs/fashion_mnist/): checkpoint-NNNNNN/
(model.pt + config.yaml), metrics.jsonl (step, d_loss, g_loss, img_per_s), grids/grid-NNNNNN.png,
tensorboard/ (loss curves, img/s and sample grids: tensorboard --logdir <run folder>).
Every config key is listed by --dry-run; override any of them with --set section.key=value.

"""


def _run_train(args: argparse.Namespace) -> int:
    from synthgen.config import ExperimentConfig, dump_yaml, load_config

    cfg = load_config(ExperimentConfig, config_path(args), args.overrides)
    if args.dry_run:
        from synthgen.train.layout import resolve_layout, this_machine

        print(dump_yaml(cfg), end="")
        t = cfg.train
        layout = resolve_layout(t.num_workers, t.cpus_per_worker, t.use_gpu, this_machine())
        print(
            f"# layout on this machine: {layout.num_workers} worker(s) x {layout.cpus_per_worker:g} CPU(s) "
            f"(global batch {t.batch_size * layout.num_workers}): {layout.reason}. A joined cluster is laid out "
            "from its own nodes at launch."
        )
        return 0
    from synthgen.train.trainer import train

    result = train(cfg, resume=args.resume)
    print(f"checkpoint: {result.checkpoint_path}")
    return 0


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "train",
        "train a GAN on real images with Ray Train DDP workers",
        "Train a (class-conditional) GAN with Ray Train distributed data-parallel workers. "
        "Checkpoints every train.checkpoint_every steps; a killed worker is replaced and training "
        "continues from the latest checkpoint.",
        TRAIN_EPILOG,
    )
    add_config_arguments(parser)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the named run from its latest checkpoint (after the driver died)",
    )
    parser.set_defaults(func=_run_train)


def _stage_registrars() -> list[Callable[[argparse._SubParsersAction], None]]:
    from synthgen import pipeline
    from synthgen.evaluate import commands as evaluate_commands
    from synthgen.invert import commands as invert_commands
    from synthgen.sample import commands as sample_commands

    return [
        _register_train,
        sample_commands.register,
        invert_commands.register,
        evaluate_commands.register,
        pipeline.register,
    ]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subcommand per stage."""
    parser = argparse.ArgumentParser(
        prog="synthgen",
        description="Synthetic labelled training images: train a GAN with Ray Train, sample it into "
        "Parquet/PNG shards with a fleet of Ray actors, evaluate what the images are worth.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"synthgen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _stage_registrars():
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``synthgen`` console script.

    Returns:
        The exit code: 0 ok, 1 runtime failure, 2 usage/config error, 130 interrupted.
    """
    args = build_parser().parse_args(argv)  # a usage error exits 2 here (argparse)
    setup_logging()
    return run_guarded(f"synthgen {args.command}", lambda: args.func(args))


def run_job(stage: str, argv: Sequence[str], default_config: str | None = None, defaults: Sequence[str] = ()) -> int:
    """Entry point of ``jobs/<stage>.py``: the ``synthgen <stage>`` subcommand, thin.

    Every option of the subcommand works (``--config/--set/--dry-run/--smoke-test`` ...); a job only
    adds its defaults in front, so anything the caller passes wins (argparse keeps the last value).

    Args:
        stage: the subcommand (train, sample, evaluate, pipeline).
        argv: the job's arguments (``sys.argv[1:]``).
        default_config: the YAML used when ``--config`` is not given (its ``_smoke`` sibling with
            ``--smoke-test``).
        defaults: other leading arguments, e.g. ``["--verify"]`` for jobs/sample.py.

    Returns:
        The exit code, as ``main``.
    """
    args = list(argv)
    given = any(a == "--config" or a.startswith("--config=") for a in args)
    lead = ["--config", default_config] if default_config and not given else []
    return main([stage, *lead, *defaults, *args])


if __name__ == "__main__":
    sys.exit(main())
