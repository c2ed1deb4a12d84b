"""Augmentation uplift: real-only vs real+synthetic classifier accuracy on small real subsets.

The work (honest per-subset generators, synthetic pools, the two classifier arms) is in
``synthgen.evaluate.uplift``; this module registers it and says how its rows read.
"""

from __future__ import annotations

from typing import Any

from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, ReportLine, fmt


def compute(ctx: EvalContext) -> MetricOutput:
    from synthgen.evaluate.uplift import uplift  # torch and the training driver: imported when it runs

    return uplift(ctx)


def summary(r: dict[str, Any], settings: dict[str, Any]) -> list[ReportLine]:
    out = []
    for tag, f in r.get("by_fraction", {}).items():
        u = f["uplift_points"]
        out.append(ReportLine(f"uplift at {tag} real ({f['num_real']} img)", fmt(f["real_plus_synthetic"]["mean"], 4),
                              f"real only {fmt(f['real_only']['mean'], 4)}",
                              f"{u['mean']:+.2f} ± {u['std']:.2f} pts over {len(u['values'])} seeds"
                              f"{'' if r.get('honest') else ' (not honest: evaluated generator, not one per subset)'}"))
    return out


METRIC = Metric(
    name="uplift", order=70, compute=compute, summary=summary,
    description="per real fraction (uplift.fractions, default 1%): real-only vs real+synthetic classifier",
    details="""over uplift.seeds seeds. Honest by default: each subset's generator is trained on that
subset only (with DiffAugment) through the training driver, stored in OUT/uplift/ and
reused. The synthetic images are drawn around the subset's own images (each inverted into
the generator, varied by uplift.inversion_sigma in latent space); --set uplift.pool=prior
samples the prior instead. --set uplift.generator=evaluated uses the evaluated generator
(an upper bound); --set uplift.pool=prior --set uplift.filter=judge:0.9 keeps prior samples
the real-only classifier accepts""",
)
