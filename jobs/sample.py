"""Ray job: sample a trained generator into Parquet/PNG shards, then verify them.

    python jobs/sample.py --config jobs/configs/sample.yaml [--set num_actors=16 ...]
    python jobs/sample.py --smoke-test     # jobs/configs/sample_smoke.yaml, well under a minute on a CPU
    ray job submit --working-dir . -- python jobs/sample.py --config jobs/configs/sample.yaml

Joins the cluster in RAY_ADDRESS (what ``ray job submit`` sets) or starts a local Ray instance.
With ``--smoke-test``, when the smoke training run does not exist yet, an untrained checkpoint of
the smoke training config is written to a temp folder and sampled instead (the machinery does not
care what the weights learned; the log says so).
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
from synthgen.errors import SynthgenError  # noqa: E402
from synthgen.sample.config import SampleConfig  # noqa: E402

SMOKE_CONFIG = os.path.join(ROOT, "jobs", "configs", "sample_smoke.yaml")
SMOKE_TRAIN_CONFIG = os.path.join(ROOT, "jobs", "configs", "fashion_mnist_smoke.yaml")


def _smoke_checkpoint(cfg: SampleConfig) -> list[str]:
    """Overrides pointing at an untrained checkpoint when the smoke run's checkpoint is missing."""
    from synthgen.sample.randinit import write_random_checkpoint
    from synthgen.checkpoint import list_checkpoints
    from synthgen.storage import is_uri

    path = cfg.checkpoint
    if is_uri(path) or list_checkpoints(path) or os.path.isfile(os.path.join(path, "model.pt")):
        return []
    train_cfg = load_config(ExperimentConfig, SMOKE_TRAIN_CONFIG) if os.path.isfile(SMOKE_TRAIN_CONFIG) else None
    run_dir = write_random_checkpoint(tempfile.mkdtemp(prefix="synthgen-smoke-ckpt-"), train_cfg)
    print(f"[smoke] {path!r} has no checkpoint yet: sampling an UNTRAINED one written to {run_dir}", flush=True)
    return [f"checkpoint={run_dir}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="SampleConfig YAML (default: jobs/configs/sample.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a SampleConfig key (repeatable)")
    parser.add_argument("--smoke-test", action="store_true", help="run the smoke-sized config (sample_smoke.yaml)")
    parser.add_argument("--no-verify", dest="verify", action="store_false", help="skip the verify pass")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    args = parser.parse_args(argv)
    config = args.config or (SMOKE_CONFIG if args.smoke_test else os.path.join(ROOT, "jobs", "configs", "sample.yaml"))
    if args.smoke_test and args.config:
        config = smoke_sibling(args.config)

    from synthgen.sample.run import run_sample
    from synthgen.sample.verify import verify_output

    try:
        cfg = load_config(SampleConfig, config, args.overrides)
        if args.dry_run:
            print(dump_yaml(cfg), end="")
            return 0
        if args.smoke_test:
            cfg = load_config(SampleConfig, config, [*args.overrides, *_smoke_checkpoint(cfg)])
        result = run_sample(cfg)
        m = result.manifest
        print(f"sampled {m['total']} images, {m['num_shards']} shards -> {cfg.out} "
              f"({result.shards_written} written, {result.shards_reused} reused)")
        if result.stats is not None:
            s = result.stats
            rate = sum(r["rows"] for r in s.records.values()) / max(s.seconds, 1e-9)
            print(f"fleet: {s.seconds:.1f}s ({rate:.0f} img/s incl. {s.actors_ready_s:.1f}s actor start-up), "
                  f"actor restarts {s.actor_restarts}, shard retries {s.shard_retries}")
        if args.verify:
            report = verify_output(cfg.out)
            if not report.ok:
                print("verify FAILED:\n  " + "\n  ".join(report.problems[:20]), file=sys.stderr)
                return 1
            print(f"verify OK: {report.total} images, {report.images_decoded} PNGs decoded")
    except SynthgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
