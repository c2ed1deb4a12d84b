"""Augmentation uplift: does adding synthetic images help a classifier that has little or unbalanced real data?

``uplift.setting`` picks the real subsets, each drawn by ``subset_seed = s`` for seed s (exactly what
``load_images`` gives the trainer, ``synthgen.data.subset``):

    few_labels  per fraction f: the class-stratified ``max_images = f * N`` subset (f = 1.0: the full split)
    long_tail   one subset with ``uplift.class_counts`` images per class (e.g. GAMO's ratio-100 tail)

Two classifiers with the same recipe and the same number of steps are tested on the real test split:

    real only       batches drawn from the subset
    real+synthetic  a ``synthetic_fraction`` share of every batch drawn from a synthetic pool

Both arms are trained and scored by ``synthgen.classify`` (the code ``jobs/train_classifier.py`` runs too, so the
same images, settings and seed give the same accuracy there): batches through ``synthgen.data.mix`` (the
real-only arm with no synthetic rows), each part walked in shuffled passes; in the long-tail setting both arms
draw their real rows class-balanced (every class equally often: the strongest cheap baseline), and the pool
fills the rare classes (its ``class_weights``, ``uniform`` by default: as many synthetic images per class, so
many variations of each rare image). The pool (``synthgen.evaluate.uplift_pool``) is drawn around the subset's
own images by default: each real image is inverted into the generator and varied in latent space, so the pool varies
images the classifier has, rather than adding prior draws of a generator that saw only those same images
(``uplift.pool=prior``). Results per seed and over seeds (mean, std, standard error, seeds > 0); the long
tail adds the mean test accuracy of the ``uplift.rare_classes`` rarest classes. Measured uplifts: README.

The honest setting (default) draws the pool from a generator trained *on that subset only*, with
DiffAugment, through the regular training driver; those runs live in ``<out>/uplift/`` (one folder per
subset, seed and recipe digest) and are reused when already complete. ``uplift.generator=evaluated``
uses the evaluated generator instead, which saw the whole training split: an upper bound, flagged
``honest: false`` in the results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from typing import Any

import numpy as np
import yaml

from synthgen.classify import ClassifierSettings, rare_accuracy, train_and_score
from synthgen.config import ExperimentConfig, apply_overrides, from_dict, to_dict, upgrade_legacy_config
from synthgen.data import load_images
from synthgen.data.subset import class_count_subset, rarest_classes
from synthgen.errors import ConfigError
from synthgen.evaluate.context import EvalContext, MetricOutput
from synthgen.evaluate.stats import stats
from synthgen.evaluate.uplift_pool import pool_weights, synthetic_pool
from synthgen.storage import Location

# The configs are typed Any here: this module runs the "uplift" metric, and the evaluation config asks
# the metric registry for its names, so importing synthgen.evaluate.config here would close a cycle.
log = logging.getLogger("synthgen")

LONG_TAIL = "long_tail"  # the results key (and uplift.setting) of the long-tail subset


def subset_size(fraction: float, num_train: int, num_classes: int) -> int:
    """Images in the ``fraction`` subset: rounded, at least one per class."""
    return int(min(num_train, max(num_classes, round(fraction * num_train))))


def fraction_tag(fraction: float) -> str:
    """A fraction's run-name tag: 0.01 -> ``1pct``."""
    return f"{fraction * 100:g}pct"


def run_name(which: float | str, seed: int, digest: str = "") -> str:
    """Run folder name of an honest generator, e.g. ``uplift-1pct-seed00-1a2b3c4d`` (digest of its config).

    Args:
        which: the subset: a fraction (-> ``1pct``) or a tag such as ``longtail``.
        seed: the subset seed.
        digest: the recipe digest ("" = leave it out).
    """
    tag = fraction_tag(which) if isinstance(which, float) else str(which)
    return f"uplift-{tag}-seed{seed:02d}" + (f"-{digest}" if digest else "")


def subsets(u: Any, num_train: int, num_classes: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The real subsets ``u.setting`` measures: (results key, run-name tag, the DataConfig fields that pick it).

    few_labels: one per fraction, ``("1%", "1pct", {"max_images": 600, "class_counts": ()})``;
    long_tail: ``("long_tail", "longtail", {"max_images": 0, "class_counts": u.class_counts})``.
    """
    if u.setting == LONG_TAIL:
        return [(LONG_TAIL, "longtail", {"max_images": 0, "class_counts": tuple(u.class_counts)})]
    return [
        (f"{f * 100:g}%", fraction_tag(f), {"max_images": subset_size(f, num_train, num_classes), "class_counts": ()})
        for f in u.fractions
    ]


def honest_config(
    base: ExperimentConfig, fraction: float, num_real: int, seed: int, u: Any, storage: str
) -> ExperimentConfig:
    """The training config of the honest generator for (fraction, seed): see ``subset_generator_config``.

    Raises:
        ConfigError: a bad override in ``uplift.generator_overrides``.
    """
    return subset_generator_config(
        base, fraction_tag(fraction), {"max_images": num_real, "class_counts": ()}, seed, u, storage
    )


def subset_generator_config(
    base: ExperimentConfig, tag: str, subset: dict[str, Any], seed: int, u: Any, storage: str
) -> ExperimentConfig:
    """The training config of the honest generator of one subset and seed: the evaluated run's recipe, on
    that subset only, with DiffAugment, ``u.generator_steps`` steps and ``u.generator_overrides``.

    Args:
        base: the evaluated run's training config.
        tag: the subset's run-name tag (``1pct``, ``longtail``).
        subset: DataConfig fields that pick the subset (max_images, class_counts); subset_seed is ``seed``.
        seed: the subset seed (also the generator's training seed).
        u: the UpliftConfig.
        storage: folder the run is stored in.

    Raises:
        ConfigError: a bad override in ``uplift.generator_overrides``, or one that changes the subset.
    """
    d = to_dict(base)
    d["data"].update(**subset, subset_seed=seed)
    d["model"]["diffaugment"] = u.generator_diffaugment
    steps = u.generator_steps
    d["train"].update(
        steps=steps,
        checkpoint_every=steps,
        sample_every=steps,
        log_every=min(d["train"]["log_every"], steps),
        seed=seed,
    )
    # An unresolved (automatic) layout gets the one the honest recipes were measured with, 2 workers x 1 CPU: a
    # recipe (its global batch, its folder's digest) must not depend on the machine that trains it
    d["train"]["num_workers"] = d["train"]["num_workers"] or 2
    d["train"]["cpus_per_worker"] = d["train"]["cpus_per_worker"] or 1.0
    d["run"].update(name="", storage_path=storage)
    d = apply_overrides(d, list(u.generator_overrides))
    # The folder name carries a digest of the whole recipe: another recipe trains into another folder,
    # the same recipe finds (and reuses) its earlier run.
    # Where the run is stored is not part of the recipe: a relative and an absolute spelling of the same
    # storage folder must find the same run.
    recipe = _without_later_keys_at_default({**d, "run": {**d["run"], "storage_path": ""}})
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:8]
    d["run"]["name"] = run_name(tag, seed, digest)
    cfg = from_dict(ExperimentConfig, d, "uplift generator config")
    cfg.validate()
    want = (subset["max_images"], tuple(subset["class_counts"]), seed)
    if (cfg.data.max_images, cfg.data.class_counts, cfg.data.subset_seed) != want:
        raise ConfigError(
            "uplift.generator_overrides must not change data.max_images / data.class_counts / "
            "data.subset_seed: the honest generator has to see exactly the classifier's real subset"
        )
    return cfg


# Config keys added after honest generators were first cached: left out of the recipe digest while they hold
# their defaults, so the generators trained before each key existed keep their folder names (and are reused).
KEYS_ADDED_LATER = (
    ("data", "class_counts"),
    ("model", "r1_gamma"),
    ("model", "r1_interval"),
    ("train", "channels_last"),
    ("train", "precision"),
    ("train", "tf32"),
    ("train", "fused_adam"),
    ("train", "compile"),
    ("model", "codes"),
    ("model", "info_weight"),
    ("train", "max_minutes"),
    ("model", "aux_weight"),
    ("model", "mode_seeking_weight"),
    ("data", "pairs"),
    ("data", "index_half"),
    (None, "data_b"),  # a whole section, None for the noise models the honest generators are
)


# Keys retired from the config after honest generators were first cached, with the value every recipe held:
# put back into the digest, so those generators keep their folder names too.
KEYS_RETIRED = {("train", "fail_at_step"): -1, ("train", "nan_at_step"): -1}


def _without_later_keys_at_default(recipe: dict) -> dict:
    """``recipe`` (a config dict) in the shape of the first cached recipes: without the ``KEYS_ADDED_LATER`` that
    equal ``ExperimentConfig()``'s defaults, with the ``KEYS_RETIRED`` at the value they always had."""
    defaults = json.loads(json.dumps(to_dict(ExperimentConfig())))
    out = json.loads(json.dumps(recipe))  # a deep copy, tuples as lists like the defaults
    for section, key in KEYS_ADDED_LATER:
        where, default = (out, defaults) if section is None else (out.get(section, {}), defaults[section])
        if key in where and where[key] == default[key]:
            del where[key]
    for (section, key), value in KEYS_RETIRED.items():
        out.setdefault(section, {})[key] = value
    return out


def train_honest_generator(cfg: ExperimentConfig) -> str:
    """Train (or reuse) the honest generator run ``cfg``; return its final checkpoint folder.

    A complete earlier run with the identical config is reused; one with the same config that stopped
    early is resumed.

    Raises:
        ConfigError: the run folder holds a run with a different config (only if edited by hand: the
            folder name carries a digest of the config).
    """
    from synthgen import checkpoint as ckpt
    from synthgen.train.trainer import finished_checkpoint, run_dir_of, train

    run_dir = run_dir_of(cfg)
    existing = ckpt.list_checkpoints(run_dir)  # a local folder or a URI
    if existing:
        folder = Location(run_dir)
        same = folder.exists(ckpt.CONFIG_FILE) and _same_recipe(folder.read_bytes(ckpt.CONFIG_FILE).decode(), cfg)
        if not same:
            raise ConfigError(
                f"{run_dir} holds an uplift generator trained with another config; delete that "
                "folder or choose another uplift.storage"
            )
        done = finished_checkpoint(cfg, run_dir)
        if done is not None:
            log.info("uplift: reusing honest generator %s", done[1])
            return done[1]
    log.info(
        "uplift: training honest generator %s on %s real images (%d steps)",
        cfg.run.name,
        cfg.data.max_images or list(cfg.data.class_counts),
        cfg.train.steps,
    )
    return train(cfg, resume=bool(existing)).checkpoint_path


def _same_recipe(stored_yaml: str, cfg: ExperimentConfig) -> bool:
    """Whether a run's saved ``config.yaml`` is ``cfg`` up to how its storage and data folders were spelled (a
    relative and an absolute path to the same folder find the same run, as its name promises; training saves
    ``data.root`` absolute) and up to keys added since it was written (they read back at their defaults)."""
    from synthgen.train.trainer import with_absolute_data_root

    stored = yaml.safe_load(stored_yaml) or {}
    storage = (stored.get("run") or {}).get("storage_path", cfg.run.storage_path)
    as_stored = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, storage_path=storage))
    try:
        saved = from_dict(ExperimentConfig, upgrade_legacy_config(stored), "stored uplift generator config")
    except ConfigError:
        return False
    return with_absolute_data_root(saved) == with_absolute_data_root(as_stored)


def arm_settings(cfg: Any, seed: int) -> ClassifierSettings:
    """The classifier recipe of both arms of one seed (``synthgen.classify``, as ``jobs/train_classifier.py``).

    Args:
        cfg: the EvalConfig (``uplift.steps``, ``batch_size``, ``lr``, ``augment``, ``synthetic_fraction``,
            ``setting``; ``judge.width``).
        seed: the uplift seed: weight init, batch order and augmentation shifts.

    Returns:
        The settings; the long tail draws real rows class-balanced; torch's thread count is left as it is.
    """
    u = cfg.uplift
    return ClassifierSettings(
        steps=u.steps,
        batch_size=u.batch_size,
        lr=u.lr,
        width=cfg.judge.width,
        augment=u.augment,
        synthetic_fraction=u.synthetic_fraction,
        class_balanced=u.setting == LONG_TAIL,
        seed=seed,
    )


def check_uplift_possible(cfg: Any, has_experiment: bool, has_generator: bool) -> None:
    """Fail before any work when the honest setting has no training config to start from, or the
    inversion pool no generator to invert into.

    Raises:
        ConfigError: honest uplift requested without a training config (shards lacking one); the evaluated
            generator's inversion pool requested for shards.
    """
    if (
        "uplift" in cfg.metrics
        and cfg.uplift.generator == "evaluated"
        and cfg.uplift.pool == "inversion"
        and not has_generator
    ):
        raise ConfigError(
            "uplift.pool=inversion draws around real images through a generator, and shards have "
            "none: add --set uplift.pool=prior to mix the shards' own images in"
        )
    if "uplift" in cfg.metrics and cfg.uplift.generator == "honest" and not has_experiment:
        raise ConfigError(
            "uplift with honest per-subset generators needs a training config to train them with: "
            "pass --checkpoint, or shards whose manifest.json records it (written by `synthgen "
            "sample`); otherwise pass --set uplift.generator=evaluated (an upper bound: those "
            "images may come from a generator that saw the whole training split)"
        )


def _arms(real_only: list[float], mixed: list[float]) -> dict[str, Any]:
    """Both arms' stats and their difference in points."""
    diff = [100.0 * (m - b) for m, b in zip(mixed, real_only)]
    return {"real_only": stats(real_only), "real_plus_synthetic": stats(mixed), "uplift_points": stats(diff, True)}


def _measure(ctx: EvalContext, tag: str, subset: dict[str, Any], storage: str) -> dict[str, Any]:
    """Both arms on one subset over ``uplift.seeds`` seeds: the results entry of that subset.

    Raises:
        ConfigError: see ``subset_generator_config``, ``uplift_pool.synthetic_pool``; a subset that does not fit
            the training split.
    """
    cfg, u = ctx.cfg, ctx.cfg.uplift
    test, names = ctx.real_test, tuple(ctx.real_test.class_names)
    acc: dict[str, list[float]] = {"real_only": [], "real_plus_synthetic": []}
    per_class: dict[str, list[dict]] = {"real_only": [], "real_plus_synthetic": []}
    generators, inversion_mse, start_mse, pool_counts = [], [], [], []
    for seed in range(u.seeds):
        subset_cfg = dataclasses.replace(ctx.source.data_cfg, **subset, subset_seed=seed)
        path = None
        if u.generator == "honest":
            gcfg = subset_generator_config(ctx.source.experiment, tag, subset, seed, u, storage)
            subset_cfg = gcfg.data  # the classifier's real subset is exactly the generator's training data
            path = train_honest_generator(gcfg)
        generators.append(path or ctx.source.identity.get("path", ""))
        real = load_images(subset_cfg, "train")
        desc = f"uplift {tag} seed {seed}"
        settings = arm_settings(cfg, seed)  # both arms: same init, same real batch order
        real_only = train_and_score(real, None, test, settings, progress=ctx.progress, desc=f"{desc} real")
        syn, inv = synthetic_pool(ctx, path, seed, real, real_only.model)
        if inv is not None:
            log.info(
                "%s: inverted %d real images, pixel mse %.4f -> %.4f", desc, len(inv.labels), inv.start_mse, inv.mse
            )
            inversion_mse.append(inv.mse)
            start_mse.append(inv.start_mse)
        pool_counts.append(np.bincount(syn.labels, minlength=len(names)).tolist())
        log.info("%s: %d real images, %d synthetic", desc, len(real), len(syn))
        mixed = train_and_score(real, syn, test, settings, progress=ctx.progress, desc=f"{desc} real+syn")
        for arm, result in (("real_only", real_only), ("real_plus_synthetic", mixed)):
            acc[arm].append(result.score.accuracy)
            per_class[arm].append(result.score.per_class)
        log.info("%s: real only %.4f, real+synthetic %.4f", desc, acc["real_only"][-1], acc["real_plus_synthetic"][-1])
    entry: dict[str, Any] = {
        "num_real": len(real),
        **_arms(acc["real_only"], acc["real_plus_synthetic"]),
        "generators": generators,
        "per_class": per_class,
        "synthetic_per_class": pool_counts,
    }
    if u.setting == LONG_TAIL:
        rare = rarest_classes(subset["class_counts"], u.rare_classes)
        rare_acc = {arm: [rare_accuracy(pc, names, rare) for pc in per_class[arm]] for arm in per_class}
        entry.update(
            class_counts=list(subset["class_counts"]),
            rare_classes=[names[c] for c in rare],
            rare=_arms(rare_acc["real_only"], rare_acc["real_plus_synthetic"]),
        )
    if inversion_mse:
        entry.update(inversion_mse=stats(inversion_mse), inversion_start_mse=stats(start_mse))
    return entry


def uplift(ctx: EvalContext) -> MetricOutput:
    """Real-only vs real+synthetic test accuracy per real subset of ``uplift.setting``, over ``uplift.seeds``
    seeds (the "uplift" metric). Each subset's results hold both arms' accuracies (overall and per class, per
    seed), their difference in points, the generator of each seed, the pool's images per class and, for
    pool=inversion, the pixel error of the inversion before and after optimising; the long tail adds both
    arms' mean accuracy on its rarest classes. Few labels: ``results["by_fraction"]["1%"]``; long tail:
    ``results["long_tail"]``.

    Raises:
        ConfigError: see ``check_uplift_possible``; a bad ``uplift.generator_overrides`` or class weights; class
            counts that do not fit the training split.
        DataError: the real test split lacks a rare class.
    """
    cfg, u = ctx.cfg, ctx.cfg.uplift
    check_uplift_possible(cfg, ctx.source.experiment is not None, ctx.source.generator is not None)
    storage = u.storage or os.path.join(ctx.out_dir, "uplift")
    k = len(ctx.source.class_names)
    if u.setting == LONG_TAIL:  # fail before any generator trains, naming the metric's key
        try:
            class_count_subset(ctx.real_train.labels, u.class_counts, 0, ctx.real_train.class_names)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("data.class_counts", "uplift.class_counts")) from exc
    measured = {key: _measure(ctx, tag, subset, storage) for key, tag, subset in subsets(u, len(ctx.real_train), k)}
    if u.setting != LONG_TAIL:
        for f in u.fractions:
            measured[f"{f * 100:g}%"] = {"fraction": f, **measured[f"{f * 100:g}%"]}
    results: dict[str, Any] = {"honest": u.generator == "honest", "setting": u.setting}
    if u.setting == LONG_TAIL:
        results[LONG_TAIL] = measured[LONG_TAIL]
    else:
        results["by_fraction"] = measured
    return MetricOutput(
        results=results,
        settings=to_dict(u)
        | {"storage": storage, "classifier_width": cfg.judge.width, "class_weights_resolved": pool_weights(u)},
        counts={"real_test": len(ctx.real_test), "synthetic_per_run": u.num_synthetic},
    )
