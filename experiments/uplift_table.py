"""Uplift over seeds from `jobs/train_classifier.py` results: per seed and mean, std, standard error, positive.

    python experiments/uplift_table.py --real 'out/clf_1pct_seed{seed:02d}_real.json' \
        --arm 'out/clf_1pct_seed{seed:02d}_ms.json' --seeds 0-8 --choosing 0-2

``--real`` and ``--arm`` are paths with a ``{seed}`` field (Python format syntax, so ``{seed:02d}`` zero-pads),
one JSON file per seed written by ``jobs/train_classifier.py --set out=...``. The two runs of a seed must be a
matched pair: the same real subset, classifier seed, steps, batch size, learning rate, width, augmentation,
class balancing and torch thread count (the thread count alone moves a Fashion-MNIST 1% classifier by up to
0.27 points); only what the arm adds (shards, synthetic_fraction, filter_threshold, ...) may differ. A pair
that does not match is refused with the keys that differ. Without ``--real``, each arm's own
``real_only_accuracy`` is the baseline (``filter_threshold`` runs train exactly the real-only arm first).

``--choosing`` names the seeds the arm's settings were chosen on: the table then also summarises the other
seeds alone, the confirmation that counts. With ``rare_accuracy`` in both files (a long tail, ``data.class_counts``)
the uplift of the rarest classes is reported too. ``--out`` writes the table as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a checkout without installing

from synthgen.cli_args import EXIT_CODES_HELP, run_guarded  # noqa: E402
from synthgen.config import to_dict  # noqa: E402
from synthgen.errors import ConfigError  # noqa: E402

JOBS = os.path.join(ROOT, "jobs")
if JOBS not in sys.path:
    sys.path.insert(0, JOBS)  # the classifier job's config, imported the way bench_cost.py imports its siblings
from train_classifier import ClassifierJobConfig  # noqa: E402

# Config keys of train_classifier that both runs of a pair must share: everything that shapes the real-only
# classifier. The others (shards, train_on, synthetic_fraction, max_synthetic, remap_classes, filter_threshold,
# out) are what the synthetic arm adds.
MATCHED_KEYS = (
    "data",
    "epochs",
    "steps",
    "batch_size",
    "lr",
    "width",
    "augment",
    "class_balanced",
    "rare_classes",
    "seed",
    "num_threads",
)


def parse_seeds(spec: str) -> list[int]:
    """``"0-2,5"`` -> ``[0, 1, 2, 5]``.

    Raises:
        ConfigError: an empty, malformed or repeated list.
    """
    seeds: list[int] = []
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part)
        if not match or (match[2] is not None and int(match[2]) < int(match[1])):
            raise ConfigError(f"seeds {spec!r} is not a list of seeds: write e.g. 0-8 or 0,1,2,5")
        seeds.extend(range(int(match[1]), int(match[2] or match[1]) + 1))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {spec!r} must name each seed once, e.g. 0-8 or 0,1,2,5")
    return seeds


def _read(pattern: str, seed: int, what: str) -> dict[str, Any]:
    """The result JSON of ``seed`` under ``pattern``."""
    try:
        path = pattern.format(seed=seed)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"--{what} {pattern!r} must be a path with one {{seed}} field, e.g. "
            f"'out/clf_seed{{seed:02d}}.json' ({exc!r})"
        ) from None
    if path == pattern:
        raise ConfigError(f"--{what} {pattern!r} has no {{seed}} field: every seed would read the same file")
    if not os.path.isfile(path):
        raise ConfigError(
            f"seed {seed}: {path} does not exist; run jobs/train_classifier.py with --set out={path} "
            "or leave the seed out of --seeds"
        )
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    if "accuracy" not in result or "config" not in result:
        raise ConfigError(f"{path} is not a jobs/train_classifier.py result (no accuracy / config)")
    result["_path"] = path
    return result


def check_pair(real: dict[str, Any], arm: dict[str, Any]) -> None:
    """Refuse a pair that is not a matched comparison."""
    if real["config"].get("train_on") != "real":
        raise ConfigError(
            f"{real['_path']} trained on {real['config'].get('train_on')!r}; the baseline must be --set train_on=real"
        )
    if arm["config"].get("train_on") == "real":
        raise ConfigError(
            f"{arm['_path']} trained on real images only; the arm must use shards "
            "(train_on=real+synthetic or synthetic)"
        )
    a, b = _matched_settings(real["config"]), _matched_settings(arm["config"])
    differ = [k for k in a if a[k] != b[k]]
    if differ:
        detail = ", ".join(f"{k}: {a[k]!r} vs {b[k]!r}" for k in differ)
        raise ConfigError(
            f"{real['_path']} and {arm['_path']} are not a matched pair ({detail}); re-run one of them "
            "with the other's settings"
        )


def _matched_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ``MATCHED_KEYS`` of a result's config as flat ``section.key`` settings; keys that a result written
    before they existed lacks read as their defaults (what that run used)."""
    full = to_dict(ClassifierJobConfig())
    flat: dict[str, Any] = {}
    for key in MATCHED_KEYS:
        if isinstance(full[key], dict):
            given = config.get(key) or {}
            flat.update({f"{key}.{k}": json.loads(json.dumps(given.get(k, v))) for k, v in full[key].items()})
        else:
            flat[key] = config.get(key, full[key])
    return flat


def seed_rows(real_pattern: str | None, arm_pattern: str, seeds: list[int]) -> list[dict[str, Any]]:
    """One row per seed: both accuracies and the uplift in points (and the rare classes' when recorded).

    Raises:
        ConfigError: a missing or foreign file, or a pair that is not matched.
    """
    rows = []
    for seed in seeds:
        arm = _read(arm_pattern, seed, "arm")
        if real_pattern:
            real = _read(real_pattern, seed, "real")
            check_pair(real, arm)
            base, base_rare = real["accuracy"], real.get("rare_accuracy")
        elif arm.get("real_only_accuracy") is not None:
            base, base_rare = arm["real_only_accuracy"], None
        else:
            raise ConfigError(
                f"{arm['_path']} has no real_only_accuracy (only filter_threshold runs record one); "
                "pass --real with the matching real-only results"
            )
        row = {
            "seed": seed,
            "real_only": base,
            "arm": arm["accuracy"],
            "uplift_points": 100.0 * (arm["accuracy"] - base),
        }
        if base_rare is not None and arm.get("rare_accuracy") is not None:
            row["rare_uplift_points"] = 100.0 * (arm["rare_accuracy"] - base_rare)
        rows.append(row)
    return rows


def summarise(rows: list[dict[str, Any]], choosing: list[int]) -> dict[str, Any]:
    """Mean, std, standard error and positive seeds of the uplift over all seeds and over the seeds not in
    ``choosing`` (the confirmation)."""
    from synthgen.evaluate.stats import stats

    out: dict[str, Any] = {"seeds": [r["seed"] for r in rows], "rows": rows}
    groups = {"all": rows}
    if choosing:
        groups["confirmation"] = [r for r in rows if r["seed"] not in choosing]
    for name, group in groups.items():
        if not group:
            continue
        out[name] = {
            "seeds": [r["seed"] for r in group],
            "uplift_points": stats([r["uplift_points"] for r in group], True),
        }
        if all("rare_uplift_points" in r for r in group):
            out[name]["rare_uplift_points"] = stats([r["rare_uplift_points"] for r in group], True)
    return out


def format_table(table: dict[str, Any]) -> str:
    """The table as Markdown: one line per seed, then the summaries."""
    rare = all("rare_uplift_points" in r for r in table["rows"])
    lines = [
        "| seed | real only | + synthetic | uplift (points) |" + (" rare classes (points) |" if rare else ""),
        "|---|---|---|---|" + ("---|" if rare else ""),
    ]
    for r in table["rows"]:
        lines.append(
            f"| {r['seed']} | {r['real_only']:.4f} | {r['arm']:.4f} | {r['uplift_points']:+.2f} |"
            + (f" {r['rare_uplift_points']:+.2f} |" if rare else "")
        )
    for name in ("all", "confirmation"):
        if name not in table:
            continue
        for key in ("uplift_points", "rare_uplift_points"):
            s = table[name].get(key)
            if s is None:
                continue
            se = f"{s['se']:.2f}" if s["se"] is not None else "n/a"
            lines.append(
                f"{name} seeds {','.join(map(str, table[name]['seeds']))}, {key}: mean {s['mean']:+.2f} "
                f"± {s['std']:.2f} (std), standard error {se}, {s['positive']}/{len(s['values'])} positive"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse, read the pairs, print the table (and write --out). Exit codes as ``EXIT_CODES_HELP``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_CODES_HELP
    )
    parser.add_argument(
        "--arm",
        required=True,
        metavar="PATTERN",
        help="results with synthetic images, e.g. 'out/clf_seed{seed:02d}_ms.json'",
    )
    parser.add_argument(
        "--real",
        metavar="PATTERN",
        help="the matched real-only results (default: each arm's "
        "real_only_accuracy, recorded by filter_threshold runs)",
    )
    parser.add_argument("--seeds", required=True, metavar="LIST", help="seeds to read, e.g. 0-8 or 0,1,2,5")
    parser.add_argument(
        "--choosing",
        default="",
        metavar="LIST",
        help="seeds the arm's settings were chosen on: the others are also summarised alone (the confirmation)",
    )
    parser.add_argument("--out", metavar="JSON", help="also write the table as JSON (atomically)")
    args = parser.parse_args(argv)
    return run_guarded("experiments/uplift_table.py", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)
    choosing = parse_seeds(args.choosing) if args.choosing else []
    table = summarise(seed_rows(args.real, args.arm, seeds), choosing)
    print(format_table(table))
    if args.out:
        from synthgen.storage import atomic_write_text

        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        atomic_write_text(os.path.abspath(args.out), json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
