"""Transfer: a classifier on a translator's A -> B images vs source-only, generic augmentation, B's own labels.

The work (the classifier arms, generic augmentation) is in ``synthgen.evaluate.transfer``, its data (halves,
subsets) in ``synthgen.evaluate.transfer_data``; this module summarises its accuracies over the seeds (mean, std,
standard error, seeds > 0; the confirmation seeds apart), judges the issue's targets, registers the metric and says
how its rows read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, PerClassColumn, ReportLine, fmt
from synthgen.evaluate.stats import stats

ARM_TITLES = {  # results key -> what the arm trains on
    "source_only": "A as it is",
    "source_generic_aug": "A + generic augmentation",
    "translated": "A translated into B",
    "oracle": "B's own labels (oracle)",
    "few_b": "few B labels",
    "few_b_plus_translated": "few B labels + translated A",
    "few_b_plus_generic": "few B labels + generic-augmented A",
    "translated_plus_generic": "translated A + generic-augmented A",
    "translated_generic_aug": "generic-augmented translated A",
}
DERIVED_TITLES = {  # results key -> (title, unit)
    "gap_closure": ("gap closed: (translated - source) / (oracle - source)", ""),
    "translated_minus_generic_points": ("translated - generic augmentation", " pts"),
    "few_b_plus_translated_minus_few_b_points": ("few B + translated - few B alone", " pts"),
    "oracle_minus_few_b_plus_translated_points": ("oracle - (few B + translated)", " pts"),
    "translated_plus_generic_minus_generic_points": ("(translated + generic) - generic augmentation", " pts"),
    "translated_generic_aug_minus_generic_points": ("generic-augmented translated - generic-augmented A", " pts"),
}
# results key -> (the arms it compares: first - second in points, or gap closure of "translated"): a comparison is
# made when every arm it names was run (transfer.arms may pick a subset)
COMPARISONS = {
    "gap_closure": ("translated", "source_only", "oracle"),
    "translated_minus_generic_points": ("translated", "source_generic_aug"),
    "few_b_plus_translated_minus_few_b_points": ("few_b_plus_translated", "few_b"),
    "oracle_minus_few_b_plus_translated_points": ("oracle", "few_b_plus_translated"),
    "translated_plus_generic_minus_generic_points": ("translated_plus_generic", "source_generic_aug"),
    "translated_generic_aug_minus_generic_points": ("translated_generic_aug", "source_generic_aug"),
}


# (results key, what it says, comparison, threshold): the targets, judged on the mean over the seeds
TARGETS = (
    ("gap_closure", "translated A closes >= 80% of the source-only -> oracle gap", ">=", 0.8),
    ("translated_minus_generic_points", "translated A beats generic augmentation by >= 10 points", ">=", 10.0),
    (
        "oracle_minus_few_b_plus_translated_points",
        "few B labels + translated A within 5 points of the oracle",
        "<=",
        5.0,
    ),
)


def derived(acc: dict[str, list[float]], idx: list[int]) -> dict[str, Any]:
    """The comparisons over the seeds at positions ``idx`` whose arms are in ``acc``: the gap closure (a ratio) and
    differences in points."""
    a = {arm: np.asarray(values, dtype=np.float64)[idx] for arm, values in acc.items()}
    out: dict[str, Any] = {}
    for key, arms in COMPARISONS.items():
        if not all(arm in a for arm in arms):
            continue
        if key == "gap_closure":
            gap = a["oracle"] - a["source_only"]  # [S]; a seed without a gap has no closure (nan)
            closure = np.where(gap != 0, (a["translated"] - a["source_only"]) / np.where(gap != 0, gap, 1.0), np.nan)
            out[key] = stats(closure.tolist(), True)
        else:
            out[key] = stats((100 * (a[arms[0]] - a[arms[1]])).tolist(), True)
    return out


def targets(summary: dict[str, Any], confirmation: dict[str, Any] | None) -> dict[str, Any]:
    """Each issue target: its mean over all seeds (and over the confirmation seeds) and whether it was met."""

    def met(value: float, op: str, threshold: float) -> bool:
        return bool(value >= threshold if op == ">=" else value <= threshold)

    out = {}
    for key, what, op, threshold in TARGETS:
        if key not in summary:
            continue  # its arms were not run (transfer.arms)
        value = summary[key]["mean"]
        entry = {"what": what, "target": f"{op} {threshold:g}", "value": value, "met": met(value, op, threshold)}
        if confirmation is not None:
            entry["confirmation_value"] = confirmation[key]["mean"]
            entry["confirmation_met"] = met(confirmation[key]["mean"], op, threshold)
        out[key] = entry
    return out


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    """The stored results from the work's per-seed accuracies: every arm's stats, the comparisons over all seeds
    and over the confirmation seeds (those not in ``choosing_seeds``, when some are), the targets, and each arm's
    per-class accuracy averaged over the seeds."""
    seeds, choosing = raw["seeds"], raw["choosing_seeds"]
    acc = raw.pop("accuracy")
    summary = derived(acc, list(range(len(seeds))))
    confirm = [i for i, s in enumerate(seeds) if s not in choosing]
    confirmation = {"seeds": [seeds[i] for i in confirm], **derived(acc, confirm)} if choosing and confirm else None
    per_class = {
        arm: {
            n: (float(np.mean([s[n] for s in per_seed])) if all(s[n] is not None for s in per_seed) else None)
            for n in (per_seed[0] if per_seed else {})
        }
        for arm, per_seed in raw["per_class"].items()
    }
    return raw | {
        "arms": {arm: stats(values) for arm, values in acc.items()},
        **summary,
        "confirmation": confirmation,
        "targets": targets(summary, confirmation),
        "per_class": per_class,
    }


def compute(ctx: EvalContext) -> MetricOutput:
    from synthgen.evaluate.transfer import transfer  # torch, torchvision and the translator: imported when it runs

    out = transfer(ctx)
    out.results = summarise(out.results)
    return out


def _spread(s: dict[str, Any], unit: str = "", signed: bool = True) -> str:
    """mean ± std over the seeds, the standard error and (a difference) how many seeds are > 0."""
    n = len(s["values"])
    mean = f"{float(s['mean']):+.3g}" if signed else f"{float(s['mean']):.4f}"
    text = f"{mean}{unit} ± {float(s['std']):.3g} over {n} seeds"  # float(): a stored nan reads back as "nan"
    if s.get("se") is not None:
        text += f", standard error {float(s['se']):.3g}"
    if "positive" in s:
        text += f", {s['positive']} of {n} > 0"
    return text


def _anchor(arm: str, arms: dict[str, Any]) -> str:
    """What an arm's accuracy reads against: the few-B arms against few B alone, the others against the oracle
    (plain "B test accuracy" where that arm was not run)."""
    ref = "few_b" if arm.startswith("few_b_plus_") else "oracle"
    if arm == "oracle" or ref not in arms:
        return "B test accuracy"
    return f"{'few B alone' if ref == 'few_b' else 'oracle'} {fmt(arms[ref]['mean'], 4)}"


def summary(r: dict[str, Any], settings: dict[str, Any]) -> list[ReportLine]:
    arms, targets = r.get("arms", {}), r.get("targets", {})
    out = []
    for arm, title in ARM_TITLES.items():
        if arm not in arms:
            continue
        out.append(
            ReportLine(
                f"transfer: {title}", fmt(arms[arm]["mean"], 4), _anchor(arm, arms), _spread(arms[arm], signed=False)
            )
        )
    for key, (title, unit) in DERIVED_TITLES.items():
        if key not in r:
            continue
        target = targets.get(key)
        anchor = f"target {target['target']}: {'met' if target['met'] else 'not met'}" if target else ""
        out.append(
            ReportLine(f"transfer: {title}", f"{float(r[key]['mean']):+.3g}{unit}", anchor, _spread(r[key], unit))
        )
    conf = r.get("confirmation")
    if conf:
        seeds = ",".join(str(s) for s in conf["seeds"])
        for key, (title, unit) in DERIVED_TITLES.items():
            if key not in conf:
                continue
            target = targets.get(key, {})
            met = (
                ""
                if "confirmation_met" not in target
                else f"target: {'met' if target['confirmation_met'] else 'not met'}"
            )
            out.append(
                ReportLine(
                    f"transfer: {title}, confirmation seeds {seeds}",
                    f"{float(conf[key]['mean']):+.3g}{unit}",
                    met,
                    _spread(conf[key], unit),
                )
            )
    return out


def per_class(r: dict[str, Any]) -> list[PerClassColumn]:
    """The translated and oracle arms' test accuracy per class, averaged over the seeds."""
    pc = r.get("per_class") or {}
    return [(f"transfer {arm}", pc[arm]) for arm in ("source_only", "translated", "oracle") if pc.get(arm)]


METRIC = Metric(
    name="transfer",
    order=65,  # never in one run with the noise metrics (`--metrics all` runs those that fit the checkpoint)
    compute=compute,
    summary=summary,
    per_class=per_class,
    measures="translator",
    description="translators: a classifier on A translated into B vs A as it is, generic augmentation, B's labels",
    details="""tested on B's real test split, over transfer.seeds seeds, the same classifier steps
for every arm. A's images (transfer.num_source) come from the item indices the
translator's B images do not (index_half opposite to data_b's), B's labelled images
(transfer.num_oracle, and transfer.label_fraction of them) from B's half; the generic
augmentation (tint, background colour, ColorJitter, noise) does not know how B was made.
Reports the gap closed between source-only and the oracle, translated - generic, and what
translated A adds to a few B labels, with the issue's targets""",
)
