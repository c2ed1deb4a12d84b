"""What every ``synthgen`` subcommand and every ``jobs/*.py`` shares: the config arguments
(``--config/--set/--dry-run``, ``--smoke-test``), the smoke-sized config lookup, and the one mapping
of typed errors to exit codes.

Subcommand modules (``synthgen.sample.commands``, ``synthgen.evaluate.commands``,
``synthgen.pipeline``) import this module; ``synthgen.cli`` only assembles their parsers, so no stage
imports the CLI and the CLI imports no stage at module level.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from synthgen.errors import ConfigError, SynthgenError
from synthgen.log import get_logger

EXIT_OK = 0
EXIT_FAILURE = 1  # a runtime failure: missing checkpoint, corrupt shards, training diverged, ...
EXIT_USAGE = 2  # a bad command line or config (argparse exits 2 too); nothing was written
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, what shells report)

# The smoke training run's config, beside every smoke config: its model shapes a smoke test's untrained checkpoint.
SMOKE_TRAIN_CONFIG = "fashion_mnist_smoke.yaml"

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    runtime failure (missing or incompatible checkpoint, unreadable data or shards, training
       failed or diverged, shards that do not verify); the message names the fix
  2    usage or config error (bad flag, unknown key, invalid value); nothing was written
  130  interrupted (Ctrl-C)
"""


def add_command(
    subparsers: Any, name: str, summary: str, description: str, epilog: str = ""
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` and return its parser.

    Args:
        subparsers: the ``synthgen`` parser's subparsers.
        name: the subcommand, e.g. "sample".
        summary: its line in ``synthgen --help``.
        description: what ``synthgen NAME --help`` says first.
        epilog: what it says after the options, printed as written (layouts, examples); the exit codes follow.
    """
    return subparsers.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_config_arguments(
    parser: argparse.ArgumentParser,
    *,
    config_help: str = "YAML config file (see jobs/configs/); defaults are used for missing keys",
    set_example: str = "train.steps=20000",
    dry_run_help: str = "print the resolved, validated config and exit without running anything",
    smoke_test: bool = True,
    default_config: str | None = None,
) -> None:
    """Add the shared ``--config`` / ``--set`` / ``--dry-run`` (and ``--smoke-test``) options.

    Args:
        parser: a subcommand's (or a job script's) parser.
        config_help: what the YAML holds, for ``--help``.
        set_example: a ``KEY=VALUE`` this command understands, for ``--help``.
        dry_run_help: what ``--dry-run`` prints for this command.
        smoke_test: also add ``--smoke-test`` (run the config's ``X_smoke.yaml`` sibling).
        default_config: the YAML used when ``--config`` is not given (jobs pass theirs).
    """
    parser.add_argument("--config", metavar="YAML", default=default_config, help=config_help)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one config value, e.g. --set {set_example} (repeatable; applied last)",
    )
    parser.add_argument("--dry-run", action="store_true", help=dry_run_help)
    if smoke_test:
        parser.add_argument(
            "--smoke-test",
            action="store_true",
            help="use the config's minute-sized sibling (X.yaml -> X_smoke.yaml), for a quick "
            "end-to-end check on a CPU",
        )


def add_no_progress_argument(parser: Any, help_text: str = "no progress bar") -> None:
    """Add ``--no-progress`` (dest ``progress``: False when given, None when not, so a config's value is kept)."""
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None, help=help_text)


def smoke_sibling(config_path: str) -> str:
    """``jobs/configs/x.yaml`` -> ``jobs/configs/x_smoke.yaml`` (the minute-sized sibling).

    Raises:
        ConfigError: the sibling does not exist.
    """
    root, ext = os.path.splitext(config_path)
    if root.endswith("_smoke"):
        return config_path
    sibling = f"{root}_smoke{ext}"
    if not os.path.isfile(sibling):
        raise ConfigError(f"--smoke-test: {config_path!r} has no smoke-sized sibling {sibling!r}; create it")
    return sibling


def config_path(args: argparse.Namespace) -> str | None:
    """The YAML to load: ``--config``, or its ``_smoke`` sibling under ``--smoke-test``.

    Raises:
        ConfigError: ``--smoke-test`` without a config, or without a smoke sibling.
    """
    path = getattr(args, "config", None)
    if not getattr(args, "smoke_test", False):
        return path
    if not path:
        raise ConfigError("--smoke-test needs --config (it runs that file's _smoke sibling)")
    return smoke_sibling(path)


def flag_values(args: argparse.Namespace, cls: type, skip: Iterable[str] = ()) -> dict[str, Any]:
    """``{config key: value}`` of the flags named like a field of dataclass ``cls``.

    A flag's argparse dest is its config key (``--num-samples`` -> ``num_samples``), so the mapping is
    derived, never listed; flags left at None were not given and keep the YAML's value.
    """
    skipped = set(skip)
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if f.name not in skipped and hasattr(args, f.name)
    }


def plan_skipped(source: str, smoke_test: bool) -> str:
    """Why a ``--dry-run`` prints the config but not the plan ("" when the plan can be computed).

    A dry run reads nothing remote (it must work offline, e.g. to check a RayJob's overrides), and
    under ``--smoke-test`` a missing checkpoint is not an error: the real run writes an untrained one.
    """
    from synthgen.checkpoint import MODEL_FILE, list_checkpoints
    from synthgen.storage import is_uri

    if source and is_uri(source):
        return f"{source} is remote storage, which a dry run does not read"
    if smoke_test and source and not (list_checkpoints(source) or os.path.isfile(os.path.join(source, MODEL_FILE))):
        return f"--smoke-test: {source!r} has no checkpoint yet; the run will use an UNTRAINED one"
    return ""


def smoke_checkpoint(path: str, smoke_config: str | None, purpose: str) -> str | None:
    """An untrained checkpoint to use when the smoke config's checkpoint ``path`` does not exist yet.

    The machinery a smoke test checks does not care what the weights learned; the log says so.

    Args:
        path: the checkpoint (run folder or checkpoint-NNNNNN) the smoke config names.
        smoke_config: the smoke YAML in use; the untrained checkpoint gets the model of the
            ``fashion_mnist_smoke.yaml`` beside it (built-in defaults when there is none).
        purpose: what the checkpoint is used for, for the log line ("sampling", "evaluating").

    Returns:
        The run folder of a fresh untrained checkpoint, or None when ``path`` already holds one.
    """
    import tempfile

    from synthgen.checkpoint import MODEL_FILE, list_checkpoints
    from synthgen.config import ExperimentConfig, load_config
    from synthgen.storage import is_uri
    from synthgen.train.untrained import write_random_checkpoint

    if not path or is_uri(path) or list_checkpoints(path) or os.path.isfile(os.path.join(path, MODEL_FILE)):
        return None
    train_config = os.path.join(os.path.dirname(smoke_config or ""), SMOKE_TRAIN_CONFIG)
    train_cfg = load_config(ExperimentConfig, train_config) if os.path.isfile(train_config) else None
    run_dir = tempfile.mkdtemp(prefix="synthgen-smoke-ckpt-")
    write_random_checkpoint(run_dir, train_cfg)
    get_logger().info(f"smoke: {path!r} has no checkpoint yet: {purpose} an UNTRAINED one written to {run_dir}")
    return run_dir


def exit_code(exc: BaseException) -> int:
    """The exit code of an error: 2 for config/usage errors, 130 for Ctrl-C, 1 for any other synthgen error."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    return EXIT_FAILURE


def run_guarded(command: str, func: Callable[[], int | None]) -> int:
    """Run ``func`` and turn a typed error into its message on stderr and its exit code.

    The only place errors become exit codes: every subcommand and job goes through it, so the same
    failure exits the same way whichever entry point hit it. Other exceptions (bugs) propagate with
    their traceback.

    Args:
        command: the name shown before the message (``synthgen sample``, ``jobs/train_classifier.py``).
        func: the command's body; returns its exit code (None = 0).

    Returns:
        0, 1, 2 or 130 as ``EXIT_CODES_HELP`` says (or what ``func`` returned).
    """
    try:
        return int(func() or EXIT_OK)
    except SynthgenError as exc:
        kind = "config error" if isinstance(exc, ConfigError) else "error"
        print(f"{command}: {kind}: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        print(f"{command}: interrupted", file=sys.stderr)
        return exit_code(exc)
