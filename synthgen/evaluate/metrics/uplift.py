"""Augmentation uplift: real-only vs real+synthetic classifier accuracy on small or long-tailed real subsets.

The work (honest per-subset generators, synthetic pools, the two classifier arms) is in
``synthgen.evaluate.uplift``; this module registers it and says how its rows read.
"""

from __future__ import annotations

from typing import Any

from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, PerClassColumn, ReportLine, fmt


def compute(ctx: EvalContext) -> MetricOutput:
    from synthgen.evaluate.uplift import uplift  # torch and the training driver: imported when it runs

    return uplift(ctx)


def _spread(u: dict[str, Any], honest: bool) -> str:
    """How an uplift in points reads: mean ± std over the seeds, and (rows since they are stored) the standard
    error and how many seeds are > 0."""
    n = len(u["values"])
    text = f"{u['mean']:+.2f} ± {u['std']:.2f} pts over {n} seeds"
    if u.get("se") is not None:
        text += f", standard error {u['se']:.2f}"
    if "positive" in u:
        text += f", {u['positive']} of {n} > 0"
    return text + ("" if honest else " (not honest: evaluated generator, not one per subset)")


def _line(title: str, arms: dict[str, Any], real_only: str, honest: bool) -> ReportLine:
    """One row of the table: both arms' mean accuracy and the uplift between them."""
    mixed, real = fmt(arms["real_plus_synthetic"]["mean"], 4), fmt(arms["real_only"]["mean"], 4)
    return ReportLine(title, mixed, f"{real_only} {real}", _spread(arms["uplift_points"], honest))


def summary(r: dict[str, Any], settings: dict[str, Any]) -> list[ReportLine]:
    honest = bool(r.get("honest"))
    out = [
        _line(f"uplift at {tag} real ({f['num_real']} img)", f, "real only", honest)
        for tag, f in r.get("by_fraction", {}).items()
    ]
    lt = r.get("long_tail")
    if lt:
        counts, rare = lt["class_counts"], lt["rare_classes"]
        balanced = "real only, class-balanced"
        out.append(_line(f"uplift long tail ({lt['num_real']} img, {max(counts)}:{min(counts)})", lt, balanced, honest))
        out.append(_line(f"uplift long tail, {len(rare)} rarest ({', '.join(rare)})", lt["rare"], balanced, honest))
    return out


def per_class(r: dict[str, Any]) -> list[PerClassColumn]:
    """Long tail: both arms' test accuracy per class, averaged over the seeds."""
    lt = r.get("long_tail")
    if not lt or not lt.get("per_class"):
        return []
    columns = []
    for arm, title in (("real_only", "uplift real only"), ("real_plus_synthetic", "uplift real+syn")):
        seeds = lt["per_class"][arm]
        names = list(seeds[0]) if seeds else []
        columns.append(
            (
                title,
                {
                    n: (sum(s[n] for s in seeds) / len(seeds) if all(s[n] is not None for s in seeds) else None)
                    for n in names
                },
            )
        )
    return columns


METRIC = Metric(
    name="uplift",
    order=70,
    compute=compute,
    summary=summary,
    per_class=per_class,
    description="real-only vs real+synthetic classifier on real subsets: few labels (uplift.fractions, default "
    "1%) or a long tail (uplift.setting=long_tail)",
    details="""over uplift.seeds seeds. Honest by default: each subset's generator is trained on that
subset only (with DiffAugment) through the training driver, stored in OUT/uplift/ and
reused. The synthetic images are drawn around the subset's own images (each inverted into
the generator, varied by uplift.inversion_sigma in latent space); --set uplift.pool=prior
samples the prior instead. --set uplift.setting=long_tail trains on uplift.class_counts
images per class (GAMO's ratio-100 Fashion-MNIST tail by default), both arms class-balanced,
the pool filling the rare classes (uplift.class_weights), and reports the accuracy of the
uplift.rare_classes rarest classes too. --set uplift.generator=evaluated uses the evaluated
generator (an upper bound); --set uplift.pool=prior --set uplift.filter=judge:0.9 keeps prior
samples the real-only classifier accepts""",
)
