"""Ray job: evaluate a trained generator (or shard dataset) and write metrics.jsonl + report.html.

    python jobs/evaluate.py --config jobs/configs/evaluate.yaml [--set uplift.seeds=5 ...]
    python jobs/evaluate.py --smoke-test     # jobs/configs/evaluate_smoke.yaml, a few minutes on a CPU
    ray job submit --working-dir . -- python jobs/evaluate.py --config jobs/configs/evaluate.yaml

The metrics run in this driver process (torch uses its threads); only the honest uplift generators
are trained on the Ray cluster (RAY_ADDRESS, which `ray job submit` sets, or a local instance).
With ``--smoke-test``, when the smoke training run does not exist yet, an untrained checkpoint of the
smoke training config is written to a temp folder and evaluated instead (the log says so).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a checkout without installing

from synthgen.cli import smoke_sibling  # noqa: E402
from synthgen.config import ExperimentConfig, dump_yaml, load_config  # noqa: E402
from synthgen.errors import ConfigError, SynthgenError  # noqa: E402
from synthgen.evaluate.config import EvalConfig  # noqa: E402

DEFAULT_CONFIG = os.path.join(ROOT, "jobs", "configs", "evaluate.yaml")
SMOKE_CONFIG = os.path.join(ROOT, "jobs", "configs", "evaluate_smoke.yaml")
SMOKE_TRAIN_CONFIG = os.path.join(ROOT, "jobs", "configs", "fashion_mnist_smoke.yaml")


def _smoke_checkpoint(cfg: EvalConfig) -> list[str]:
    """Overrides pointing at an untrained checkpoint when the smoke run's checkpoint is missing."""
    from synthgen.sample.randinit import write_random_checkpoint
    from synthgen.checkpoint import list_checkpoints
    from synthgen.storage import is_uri

    path = cfg.checkpoint
    if not path or is_uri(path) or list_checkpoints(path) or os.path.isfile(os.path.join(path, "model.pt")):
        return []
    train_cfg = load_config(ExperimentConfig, SMOKE_TRAIN_CONFIG)
    run_dir = tempfile.mkdtemp(prefix="synthgen-smoke-eval-")
    write_random_checkpoint(run_dir, train_cfg)
    print(f"[smoke] {path!r} has no checkpoint yet: evaluating an UNTRAINED one written to {run_dir}", flush=True)
    return [f"checkpoint={run_dir}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="EvalConfig YAML (default: jobs/configs/evaluate.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override an EvalConfig key, e.g. --set uplift.seeds=5 (repeatable)")
    parser.add_argument("--smoke-test", action="store_true", help="run the smoke-sized config (evaluate_smoke.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    args = parser.parse_args(argv)
    config = args.config or (SMOKE_CONFIG if args.smoke_test else DEFAULT_CONFIG)
    if args.smoke_test and args.config:
        config = smoke_sibling(args.config)

    from synthgen.evaluate.report import format_table
    from synthgen.evaluate.run import evaluate

    try:
        cfg = load_config(EvalConfig, config, args.overrides)
        if args.dry_run:
            print(dump_yaml(cfg), end="")
            return 0
        if args.smoke_test:
            cfg = load_config(EvalConfig, config, [*args.overrides, *_smoke_checkpoint(cfg)])
        rows = evaluate(cfg)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except SynthgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
