"""CLI of the evaluation stage: ``synthgen evaluate``.

``synthgen.cli`` calls ``register(subparsers)``. Config precedence: EvalConfig defaults < ``--config`` YAML
< explicit flags < ``--set``.
A flag's argparse dest is its EvalConfig key. Typed errors propagate to ``synthgen.cli_args.run_guarded`` (exit 1 or 2).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from synthgen.cli_args import (
    add_command,
    add_config_arguments,
    add_no_progress_argument,
    config_path,
    flag_values,
    plan_skipped,
    smoke_checkpoint,
)
from synthgen.config import apply_overrides, config_data, dump_yaml, from_dict
from synthgen.errors import ConfigError
from synthgen.evaluate.config import EvalConfig
from synthgen.evaluate.metrics import describe_metrics, metric_names  # the registry: one module per metric

EPILOG = (
    """\
metrics (all in the feature space of the judge, a small CNN trained on the real training split and
cached in ~/.cache/synthgen/judges; every number is printed beside its real-data anchor):
"""
    + describe_metrics()
    + """

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
  synthgen evaluate --checkpoint runs/cyclegan_rgb --metrics transfer --set transfer.seeds=[0,1,2]   # a translator
  python jobs/evaluate.py --config jobs/configs/evaluate.yaml --smoke-test   # the Ray job, tiny sizes

"""
)


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` subcommand to an argparse subparsers object."""
    p = add_command(
        subparsers,
        "evaluate",
        "measure a generator or shard dataset: FD/KID/PR/DC, label accuracy, CAS, augmentation uplift; "
        "a translator: transfer",
        "Evaluate a trained generator (--checkpoint) or an existing shard dataset (--shards) "
        "against the real test split, append the results to OUT/metrics.jsonl and write OUT/report.html.",
        EPILOG,
    )
    add_config_arguments(
        p,
        config_help="EvalConfig YAML (e.g. jobs/configs/evaluate.yaml); built-in defaults for missing keys",
        set_example="cas.epochs=2 --set uplift.seeds=5 (see --dry-run for every key)",
        dry_run_help="check the source, print the resolved config and what would run, then exit "
        "without writing anything",
    )
    p.add_argument(
        "--checkpoint",
        metavar="RUN_OR_CKPT",
        help="run folder (its latest checkpoint), checkpoint-NNNNNN folder or URI; images are generated in-process",
    )
    p.add_argument(
        "--shards", metavar="OUT", help="shard folder or URI written by `synthgen sample` (instead of --checkpoint)"
    )
    p.add_argument(
        "--metrics",
        metavar="LIST",
        help=f"comma list of {','.join(metric_names())} or 'all' (default all: every metric that fits the "
        "checkpoint, i.e. transfer for a translator, the others for a generator or shards)",
    )
    p.add_argument(
        "--num-samples",
        type=int,
        metavar="N",
        help="generated images for fd/kid/pr/dc/label_acc "
        "(default 10000; CAS uses cas.num_train, default = size of the real training split)",
    )
    p.add_argument("--seed", type=int, help="latent seed and subset seed (default 0)")
    p.add_argument(
        "--filter",
        metavar="judge:T",
        help="checkpoints: evaluate the judge-filtered generator, the "
        "images `synthgen sample --filter judge:T` writes (judge-based metrics then flatter it; cas "
        "and uplift stay honest)",
    )
    p.add_argument(
        "--out",
        metavar="FOLDER",
        help="folder for metrics.jsonl and report.html (default <run folder>/eval or <shard folder>/eval)",
    )
    add_no_progress_argument(p, "no progress bars (for logs: each metric still logs its result lines)")
    p.set_defaults(func=cmd_evaluate)


def parse_metrics(text: str) -> list[str]:
    """``"fd, kid"`` -> ["fd", "kid"]; ``"all"`` -> every metric.

    Raises:
        ConfigError: an unknown or empty name.
    """
    if text.strip() == "all":
        return list(metric_names())
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in metric_names()]
    if bad or not names:
        raise ConfigError(f"--metrics {text!r}: unknown {bad or 'empty list'}; choose from {','.join(metric_names())}")
    return names


def resolve_config(args: argparse.Namespace) -> EvalConfig:
    """Build the validated EvalConfig from --config, flags and --set overrides.

    Raises:
        ConfigError: unreadable YAML, unknown key, wrong type or invalid value.
    """
    path = config_path(args)
    data = config_data(path, flag_values(args, EvalConfig, skip=("metrics",)))  # --metrics is parsed below
    if getattr(args, "checkpoint", None):
        data.pop("shards", None)  # an explicit --checkpoint replaces a YAML's shards (and vice versa)
    if getattr(args, "shards", None):
        data.pop("checkpoint", None)
    if getattr(args, "metrics", None):
        data["metrics"] = parse_metrics(args.metrics)
    overrides = list(getattr(args, "overrides", []) or [])
    cfg = from_dict(EvalConfig, apply_overrides(data, overrides), "evaluate")
    cfg.validate()
    if getattr(args, "smoke_test", False) and not getattr(args, "dry_run", False) and not cfg.shards:
        untrained = smoke_checkpoint(cfg.checkpoint, path, "evaluating")
        if untrained:
            cfg = from_dict(EvalConfig, apply_overrides(data, [*overrides, f"checkpoint={untrained}"]), "evaluate")
            cfg.validate()
    return cfg


def plan_text(cfg: EvalConfig) -> str:
    """What an evaluation will do (for --dry-run); opens the source to check it, writes nothing."""
    from synthgen.evaluate.run import is_translator, metrics_for_source, open_source, resolve_out_dir, source_measures
    from synthgen.evaluate.uplift import check_uplift_possible, run_name, subsets

    source = open_source(cfg)
    cfg = metrics_for_source(cfg, source)
    check_uplift_possible(cfg, source.experiment is not None, source.generator is not None)
    out = resolve_out_dir(cfg, source)
    if is_translator(source):
        return "\n".join(
            [
                f"source: translation checkpoint {source.path} {source.identity.get('step', '')}",
                f"out: {out}",
                *transfer_plan(cfg, source),
            ]
        )
    if source_measures(source) == "upscaler":
        return "\n".join(
            [
                f"source: upscaler checkpoint {source.path} (x{source.identity['factor']}, step "
                f"{source.identity.get('step', '')})",
                f"real data: {source.data_cfg.source} (root {source.data_cfg.root or 'default'}), test split",
                f"out: {out}",
                f"metrics: {', '.join(cfg.metrics)} on the first {cfg.num_samples} real test images, shrunk and "
                "upscaled (and bicubic beside)",
            ]
        )
    lines = [
        f"source: {source.kind} {source.path} {source.identity.get('step', '')}".rstrip(),
        f"real data: {source.data_cfg.source} (root {source.data_cfg.root or 'default'}), full train/test splits",
        f"out: {out}",
        f"metrics: {', '.join(cfg.metrics)} on {cfg.num_samples} generated images",
    ]
    if cfg.filter:
        lines.append(
            f"filter: {cfg.filter} (each image is the first of up to {cfg.filter_max_candidates} latents "
            "the judge accepts)"
        )
    if "cas" in cfg.metrics:
        lines.append(
            f"cas: {cfg.cas.num_train or 'as many as the real training split'} synthetic images, "
            f"{cfg.cas.epochs} epochs"
        )
    if "uplift" in cfg.metrics:
        u = cfg.uplift
        pool = (
            f"around the inverted real images (sigma {u.inversion_sigma:g})"
            if u.pool == "inversion"
            else "from the prior"
        )
        which = (
            f"long tail {list(u.class_counts)} (class-balanced)"
            if u.setting == "long_tail"
            else f"fractions {list(u.fractions)}"
        )
        lines.append(
            f"uplift: {which} x {u.seeds} seeds, {u.generator} generators, "
            f"{u.num_synthetic} synthetic images drawn {pool}, {u.steps} classifier steps per arm"
        )
        if u.generator == "honest":
            from synthgen.data import load_images

            storage = u.storage or os.path.join(out, "uplift")
            num_train = len(load_images(source.data_cfg, "train"))
            for _, tag, subset in subsets(u, num_train, len(source.class_names)):
                n = subset["max_images"] or sum(subset["class_counts"])
                lines.append(
                    f"  {u.seeds} honest generators {storage}/{run_name(tag, 0)}-<recipe digest>...: "
                    f"{n} real images, {u.generator_steps} steps each (reused when already trained)"
                )
    return "\n".join(lines)


def transfer_plan(cfg: EvalConfig, source: Any) -> list[str]:
    """The --dry-run lines of the transfer metric: its halves, sizes and arms."""
    from synthgen.evaluate.transfer import selected_arms
    from synthgen.evaluate.transfer_data import describe, few_count, halves

    t, h = cfg.transfer, halves(source.experiment)
    arms = selected_arms(t)
    return [
        f"metrics: {', '.join(cfg.metrics)}",
        f"transfer: {len(t.seeds)} seeds {list(t.seeds)}, {len(arms)} classifiers each ({', '.join(arms)}), "
        f"{t.steps} steps per classifier",
        f"  A: {t.num_source} images of {describe(h.a)} on the {h.a.index_half} half (the translator's "
        f"B images are the {h.b.index_half} half), translated and as they are; {t.generic_copies} generic copies each",
        f"  B: {t.num_oracle} labelled images of {describe(h.b)} (oracle), "
        f"{few_count(t, len(source.class_names))} of them (few_b); tested on B's whole test split",
    ]


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``synthgen evaluate``: returns 0; typed errors propagate to ``cli_args.run_guarded``.

    Raises:
        ConfigError: bad flags or config (exit 2); other SynthgenErrors from the evaluation (exit 1).
    """
    cfg = resolve_config(args)
    if args.dry_run:
        skipped = plan_skipped(
            cfg.checkpoint or cfg.shards, getattr(args, "smoke_test", False) and bool(cfg.checkpoint)
        )
        if skipped:
            print(dump_yaml(cfg), end="")
            print(f"# plan not computed: {skipped}")
            return 0
        plan = plan_text(cfg)  # checks the source first: an error prints nothing else
        print(dump_yaml(cfg), end="")
        print("# plan\n" + "\n".join(f"# {line}" for line in plan.splitlines()))
        return 0
    from synthgen.evaluate.report import format_table
    from synthgen.evaluate.run import evaluate

    rows = evaluate(cfg, progress=getattr(args, "progress", None) is not False)
    print(format_table(rows))
    return 0
