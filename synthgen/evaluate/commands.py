"""CLI of the evaluation stage: ``synthgen evaluate``.

``synthgen.cli`` calls ``register(subparsers)``. Config precedence: EvalConfig defaults < ``--config`` YAML < explicit flags < ``--set``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from synthgen.config import apply_overrides, config_data, dump_yaml, from_dict
from synthgen.errors import ConfigError, SynthgenError
from synthgen.evaluate.config import ALL_METRICS, EvalConfig

EPILOG = """\
metrics (all in the feature space of the judge, a small CNN trained on the real training split and
cached in ~/.cache/synthgen/judges; every number is printed beside its real-data anchor):
  fd         Fréchet distance generated vs real test; floor = real train vs real test; ratio; per class
  kid        kernel inception distance (unbiased, cubic kernel), mean ± std over kid_subsets subsets
  pr         improved precision / recall, k = pr_k (3)
  dc         density / coverage, k = dc_k (5)
  label_acc  the judge's accuracy on generated images against their requested labels
  cas        classification accuracy score: a classifier trained on synthetic images only, tested on
             real test images, beside the same recipe trained on real images, and the gap in points
  uplift     per real fraction (uplift.fractions, default 1%): real-only vs real+synthetic classifier
             over uplift.seeds seeds. Honest by default: each subset's generator is trained on that
             subset only (with DiffAugment) through the training driver, stored in OUT/uplift/ and
             reused. The synthetic images are drawn around the subset's own images (each inverted into
             the generator, varied by uplift.inversion_sigma in latent space); --set uplift.pool=prior
             samples the prior instead. --set uplift.generator=evaluated uses the evaluated generator
             (an upper bound); --set uplift.pool=prior --set uplift.filter=judge:0.9 keeps prior samples
             the real-only classifier accepts

outputs (OUT defaults to <run folder>/eval for a checkpoint, <shard folder>/eval for shards):
  OUT/metrics.jsonl     one JSON line per metric: results, settings, counts, checkpoint path/digest/step
                        or shard folder, judge, seconds, time, synthgen version (appended)
  OUT/report.html       self-contained page: metric table with anchors, per-class samples, nearest real
                        training images, loss curves and sample grids over training (when known)
  OUT/eval_config.yaml  the resolved config

examples:
  synthgen evaluate --checkpoint runs/fashion_mnist
  synthgen evaluate --checkpoint runs/fashion_mnist --metrics fd,pr,label_acc --num-samples 5000
  synthgen evaluate --shards out/fmnist --set uplift.generator=evaluated --out out/fmnist-eval
  synthgen evaluate --config jobs/configs/evaluate.yaml --set uplift.seeds=5 --set uplift.fractions=[0.01,0.1]
  synthgen evaluate --checkpoint runs/fashion_mnist --metrics cas --filter judge:0.9
  synthgen evaluate --checkpoint runs/fashion_mnist --dry-run      # print the resolved config and plan
"""

FLAG_KEYS = {"checkpoint": "checkpoint", "shards": "shards", "out": "out", "num_samples": "num_samples",
             "seed": "seed", "filter": "filter"}  # argparse dest -> EvalConfig key


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "evaluate",
        help="measure a generator or shard dataset: FD/KID/PR/DC, label accuracy, CAS, augmentation uplift",
        description="Evaluate a trained generator (--checkpoint) or an existing shard dataset (--shards) "
        "against the real test split, append the results to OUT/metrics.jsonl and write OUT/report.html.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="YAML", help="EvalConfig YAML (e.g. jobs/configs/evaluate.yaml); "
                   "built-in defaults for missing keys")
    p.add_argument("--checkpoint", metavar="RUN_OR_CKPT", help="run folder (its latest checkpoint), "
                   "checkpoint-NNNNNN folder or URI; images are generated in-process")
    p.add_argument("--shards", metavar="OUT", help="shard folder or URI written by `synthgen sample` "
                   "(instead of --checkpoint)")
    p.add_argument("--metrics", metavar="LIST", help=f"comma list of {','.join(ALL_METRICS)} or 'all' "
                   "(default all)")
    p.add_argument("--num-samples", type=int, metavar="N", help="generated images for fd/kid/pr/dc/label_acc "
                   "(default 10000; CAS uses cas.num_train, default = size of the real training split)")
    p.add_argument("--seed", type=int, help="latent seed and subset seed (default 0)")
    p.add_argument("--filter", metavar="judge:T", help="checkpoints: evaluate the judge-filtered generator, the "
                   "images `synthgen sample --filter judge:T` writes (judge-based metrics then flatter it; cas "
                   "and uplift stay honest)")
    p.add_argument("--out", metavar="FOLDER", help="folder for metrics.jsonl and report.html "
                   "(default <run folder>/eval or <shard folder>/eval)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any EvalConfig key, e.g. --set cas.epochs=2 --set uplift.seeds=5 "
                   "(repeatable; applied last; see --dry-run for every key)")
    p.add_argument("--dry-run", action="store_true", help="check the source, print the resolved config and "
                   "what would run, then exit without writing anything")
    p.set_defaults(func=cmd_evaluate)


def parse_metrics(text: str) -> list[str]:
    """``"fd, kid"`` -> ["fd", "kid"]; ``"all"`` -> every metric.

    Raises:
        ConfigError: an unknown or empty name.
    """
    if text.strip() == "all":
        return list(ALL_METRICS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in ALL_METRICS]
    if bad or not names:
        raise ConfigError(f"--metrics {text!r}: unknown {bad or 'empty list'}; choose from {','.join(ALL_METRICS)}")
    return names


def resolve_config(args: argparse.Namespace) -> EvalConfig:
    """Build the validated EvalConfig from --config, flags and --set overrides.

    Raises:
        ConfigError: unreadable YAML, unknown key, wrong type or invalid value.
    """
    data = config_data(getattr(args, "config", None), {key: getattr(args, dest, None) for dest, key in FLAG_KEYS.items()})
    if getattr(args, "checkpoint", None):
        data.pop("shards", None)  # an explicit --checkpoint replaces a YAML's shards (and vice versa)
    if getattr(args, "shards", None):
        data.pop("checkpoint", None)
    if getattr(args, "metrics", None):
        data["metrics"] = parse_metrics(args.metrics)
    cfg = from_dict(EvalConfig, apply_overrides(data, list(getattr(args, "overrides", []) or [])), "evaluate")
    cfg.validate()
    return cfg


def plan_text(cfg: EvalConfig) -> str:
    """What an evaluation will do (for --dry-run); opens the source to check it, writes nothing."""
    from synthgen.evaluate.run import open_source, resolve_out_dir
    from synthgen.evaluate.uplift import check_uplift_possible, run_name, subset_size

    source = open_source(cfg)
    check_uplift_possible(cfg, source.experiment is not None, source.generator is not None)
    out = resolve_out_dir(cfg, source)
    lines = [f"source: {source.kind} {source.path} {source.identity.get('step', '')}".rstrip(),
             f"real data: {source.data_cfg.source} (root {source.data_cfg.root or 'default'}), full train/test splits",
             f"out: {out}", f"metrics: {', '.join(cfg.metrics)} on {cfg.num_samples} generated images"]
    if cfg.filter:
        lines.append(f"filter: {cfg.filter} (each image is the first of up to {cfg.filter_max_candidates} latents "
                     "the judge accepts)")
    if "cas" in cfg.metrics:
        lines.append(f"cas: {cfg.cas.num_train or 'as many as the real training split'} synthetic images, "
                     f"{cfg.cas.epochs} epochs")
    if "uplift" in cfg.metrics:
        u = cfg.uplift
        pool = (f"around the inverted real images (sigma {u.inversion_sigma:g})" if u.pool == "inversion"
                else "from the prior")
        lines.append(f"uplift: fractions {list(u.fractions)} x {u.seeds} seeds, {u.generator} generators, "
                     f"{u.num_synthetic} synthetic images drawn {pool}, {u.steps} classifier steps per arm")
        if u.generator == "honest":
            from synthgen.data import load_images

            storage = u.storage or os.path.join(out, "uplift")
            num_train = len(load_images(source.data_cfg, "train"))
            for f in u.fractions:
                n = subset_size(f, num_train, len(source.class_names))
                lines.append(f"  {u.seeds} honest generators {storage}/{run_name(f, 0)}-<recipe digest>...: "
                             f"{n} real images, {u.generator_steps} steps each (reused when already trained)")
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``synthgen evaluate``: 0 on success, 2 on a config error, 1 on any other synthgen error."""
    try:
        cfg = resolve_config(args)
        if args.dry_run:
            plan = plan_text(cfg)  # checks the source first: an error prints nothing else
            print(dump_yaml(cfg), end="")
            print("# plan\n" + "\n".join(f"# {line}" for line in plan.splitlines()))
            return 0
        from synthgen.evaluate.report import format_table
        from synthgen.evaluate.run import evaluate

        rows = evaluate(cfg)
    except ConfigError as exc:
        print(f"synthgen evaluate: config error: {exc}", file=sys.stderr)
        return 2
    except SynthgenError as exc:
        print(f"synthgen evaluate: error: {exc}", file=sys.stderr)
        return 1
    print(format_table(rows))
    return 0
