"""Augmentation uplift: does adding synthetic images help a classifier that has little real data?

For each fraction f and seed s: the real subset is the class-stratified ``max_images = f * N`` subset
picked by ``subset_seed = s`` (exactly what ``load_images`` gives the trainer). Two classifiers with the
same recipe and the same number of steps are tested on the real test split:

    real only       batches drawn from the subset
    real+synthetic  a ``synthetic_fraction`` share of every batch drawn from a synthetic pool

Both arms draw their batches through ``synthgen.data.mix`` (the real-only arm with no synthetic rows), each
part walked in shuffled passes. The pool (``uplift.pool``) is drawn around the subset's own images by
default: each real image is inverted into the generator and varied in latent space
(``synthgen.sample.inversion``), so the pool varies images the classifier has, rather than adding prior
draws of a generator that saw only those same images (``uplift.pool=prior``). Measured uplifts are in the
README.

The honest setting (default) draws the pool from a generator trained *on that subset only*, with
DiffAugment, through the regular training driver; those runs live in ``<out>/uplift/`` (one folder per
fraction, seed and recipe digest) and are reused when already complete. ``uplift.generator=evaluated``
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

from synthgen.config import ExperimentConfig, apply_overrides, dump_yaml, from_dict, to_dict
from synthgen.data import ImageData, load_images
from synthgen.data.mix import ImageDataset, MixedBatchSampler, MixedDataset, synthetic_per_batch
from synthgen.errors import ConfigError
from synthgen.evaluate.context import EvalContext, MetricOutput
from synthgen.evaluate.sources import JudgeFilter, generate_images, load_checkpoint_generator
from synthgen.judge.classifier import accuracy, fit
from synthgen.models.classifier import SmallCNN
from synthgen.sample.filter import parse_filter
from synthgen.sample.inversion import Inversion, invert, neighbour_images

# The configs are typed Any here: this module runs the "uplift" metric, and the evaluation config asks
# the metric registry for its names, so importing synthgen.evaluate.config here would close a cycle.
log = logging.getLogger("synthgen")


def subset_size(fraction: float, num_train: int, num_classes: int) -> int:
    """Images in the ``fraction`` subset: rounded, at least one per class."""
    return int(min(num_train, max(num_classes, round(fraction * num_train))))


def run_name(fraction: float, seed: int, digest: str = "") -> str:
    """Run folder name of an honest generator, e.g. ``uplift-1pct-seed00-1a2b3c4d`` (digest of its config)."""
    return f"uplift-{fraction * 100:g}pct-seed{seed:02d}" + (f"-{digest}" if digest else "")


def honest_config(base: ExperimentConfig, fraction: float, num_real: int, seed: int, u: Any,
                  storage: str) -> ExperimentConfig:
    """The training config of the honest generator for (fraction, seed): the evaluated run's recipe,
    on the subset only, with DiffAugment, ``u.generator_steps`` steps and ``u.generator_overrides``.

    Raises:
        ConfigError: a bad override in ``uplift.generator_overrides``.
    """
    d = to_dict(base)
    d["data"].update(max_images=num_real, subset_seed=seed)
    d["model"]["diffaugment"] = u.generator_diffaugment
    steps = u.generator_steps
    d["train"].update(steps=steps, checkpoint_every=steps, sample_every=steps, fail_at_step=-1,
                      log_every=min(d["train"]["log_every"], steps), seed=seed)
    d["run"].update(name="", storage_path=storage)
    d = apply_overrides(d, list(u.generator_overrides))
    # The folder name carries a digest of the whole recipe: another recipe trains into another folder,
    # the same recipe finds (and reuses) its earlier run.
    # Where the run is stored is not part of the recipe: a relative and an absolute spelling of the same
    # storage folder must find the same run.
    recipe = {**d, "run": {**d["run"], "storage_path": ""}}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:8]
    d["run"]["name"] = run_name(fraction, seed, digest)
    cfg = from_dict(ExperimentConfig, d, "uplift generator config")
    cfg.validate()
    if cfg.data.max_images != num_real or cfg.data.subset_seed != seed:
        raise ConfigError("uplift.generator_overrides must not change data.max_images / data.subset_seed: "
                          "the honest generator has to see exactly the classifier's real subset")
    return cfg


def train_honest_generator(cfg: ExperimentConfig) -> str:
    """Train (or reuse) the honest generator run ``cfg``; return its final checkpoint folder.

    A complete earlier run with the identical config is reused; one with the same config that stopped
    early is resumed.

    Raises:
        ConfigError: the run folder holds a run with a different config (only if edited by hand: the
            folder name carries a digest of the config).
    """
    from synthgen import checkpoint as ckpt
    from synthgen.train.trainer import run_dir_of, train

    run_dir = run_dir_of(cfg)
    existing = ckpt.list_checkpoints(run_dir)
    if existing:
        cfg_file = os.path.join(run_dir, ckpt.CONFIG_FILE)
        same = os.path.isfile(cfg_file) and _same_recipe(open(cfg_file, encoding="utf-8").read(), cfg)
        if not same:
            raise ConfigError(f"{run_dir} holds an uplift generator trained with another config; delete that "
                              "folder or choose another uplift.storage")
        if existing[-1][0] >= cfg.train.steps:
            log.info("uplift: reusing honest generator %s", existing[-1][1])
            return existing[-1][1]
    log.info("uplift: training honest generator %s on %d real images (%d steps)", cfg.run.name, cfg.data.max_images,
             cfg.train.steps)
    return train(cfg, resume=bool(existing)).checkpoint_path


def _same_recipe(stored_yaml: str, cfg: ExperimentConfig) -> bool:
    """Whether a run's saved ``config.yaml`` is ``cfg`` up to how its storage folder was spelled
    (a relative and an absolute path to the same folder find the same run, as its name promises)."""
    stored = yaml.safe_load(stored_yaml) or {}
    storage = (stored.get("run") or {}).get("storage_path", cfg.run.storage_path)
    as_stored = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, storage_path=storage))
    return stored_yaml == dump_yaml(as_stored)


def arm_batches(real: ImageData, syn: ImageData | None, u: Any, seed: int) -> Any:
    """The ``u.steps`` batches of one arm: a DataLoader over ``synthgen.data.mix`` (real only: no synthetic rows).

    All steps form one sampler epoch, so each part is walked in shuffled passes (every image once before
    any repeats), as a real-only or a mixed training run of that many steps would see them.
    """
    import torch

    empty = ImageData(name="none", images=real.images[:0], labels=real.labels[:0], class_names=real.class_names)
    mixed = MixedDataset(ImageDataset(real, output="tensor"), ImageDataset(syn if syn is not None else empty, output="tensor"))
    k = synthetic_per_batch(u.batch_size, u.synthetic_fraction) if syn is not None else 0
    sampler = MixedBatchSampler(mixed, u.batch_size, k, num_batches=u.steps, seed=seed)
    return torch.utils.data.DataLoader(mixed, batch_sampler=sampler)


def _train_arm(real: ImageData, syn: ImageData | None, cfg: Any, seed: int, desc: str, progress: bool) -> SmallCNN:
    import torch

    u = cfg.uplift
    torch.manual_seed(seed)  # same initial weights for both arms of a seed
    model = SmallCNN(real.images.shape[1], real.num_classes, real.images.shape[2], width=cfg.judge.width)
    return fit(model, arm_batches(real, syn, u, seed), steps=u.steps, lr=u.lr, seed=seed, augment=u.augment,
               progress=progress, desc=desc)


def _synthetic_pool(ctx: EvalContext, path: str | None, seed: int, real: ImageData,
                    real_only: SmallCNN) -> tuple[ImageData, Inversion | None]:
    """The synthetic pool of one (fraction, seed): ``uplift.num_synthetic`` images from the honest generator
    at ``path`` (None = the evaluated source), with the inversion it was drawn around (pool=prior: None).

    pool=inversion: around each inverted image of ``real``. pool=prior: balanced prior draws, judge-filtered
    by the real-only classifier ``real_only`` when ``uplift.filter`` is set.
    """
    cfg, u = ctx.cfg, ctx.cfg.uplift
    if u.pool == "prior":
        return _prior_pool(ctx, path, seed, real_only), None
    # check_uplift_possible has made sure a source without a generator never gets here
    generator = load_checkpoint_generator(path, cfg.use_ema)[0] if path is not None else ctx.source.generator
    inv = invert(generator, real.images, real.labels, steps=u.inversion_steps, seed=cfg.seed + seed)
    images, labels = neighbour_images(generator, inv, u.num_synthetic, u.inversion_sigma,
                                      seed=cfg.seed + 1000 + seed, batch_size=cfg.batch_size)
    return ImageData(name="inversion", images=images, labels=labels, class_names=real.class_names), inv


def _prior_pool(ctx: EvalContext, path: str | None, seed: int, real_only: SmallCNN) -> ImageData:
    cfg, u = ctx.cfg, ctx.cfg.uplift
    spec = parse_filter(u.filter)
    judge_filter = JudgeFilter(real_only.eval(), spec.threshold, u.filter_max_candidates) if spec else None
    if path is not None:
        return generate_images(path, u.num_synthetic, seed=cfg.seed + 1000 + seed, use_ema=cfg.use_ema,
                               batch_size=cfg.batch_size, judge_filter=judge_filter)
    if judge_filter is None:
        return ctx.source.images(u.num_synthetic)
    if ctx.source.generator is None:
        raise ConfigError("uplift.filter needs a generator to draw candidates from: use the honest setting, "
                          "evaluate a checkpoint, or drop uplift.filter")
    # The same source with this subset's filter instead of the evaluated one's (and its own image cache)
    return dataclasses.replace(ctx.source, judge_filter=judge_filter, _cache=None).images(u.num_synthetic)


def check_uplift_possible(cfg: Any, has_experiment: bool, has_generator: bool) -> None:
    """Fail before any work when the honest setting has no training config to start from, or the
    inversion pool no generator to invert into.

    Raises:
        ConfigError: honest uplift requested without a training config (shards lacking one); the evaluated
            generator's inversion pool requested for shards.
    """
    if ("uplift" in cfg.metrics and cfg.uplift.generator == "evaluated" and cfg.uplift.pool == "inversion"
            and not has_generator):
        raise ConfigError("uplift.pool=inversion draws around real images through a generator, and shards have "
                          "none: add --set uplift.pool=prior to mix the shards' own images in")
    if "uplift" in cfg.metrics and cfg.uplift.generator == "honest" and not has_experiment:
        raise ConfigError("uplift with honest per-subset generators needs a training config to train them with: "
                          "pass --checkpoint, or shards whose manifest.json records it (written by `synthgen "
                          "sample`); otherwise pass --set uplift.generator=evaluated (an upper bound: those "
                          "images may come from a generator that saw the whole training split)")


def _stats(values: list[float]) -> dict[str, float | list[float]]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "values": [float(v) for v in arr]}


def uplift(ctx: EvalContext) -> MetricOutput:
    """Real-only vs real+synthetic test accuracy per real fraction, over ``uplift.seeds`` seeds (the "uplift"
    metric). Each fraction's results hold both arms' accuracies, their difference in points, the generator
    of each seed and, for pool=inversion, the pixel error of the inversion before and after optimising.

    Raises:
        ConfigError: see ``check_uplift_possible``; a bad ``uplift.generator_overrides``.
    """
    cfg, u = ctx.cfg, ctx.cfg.uplift
    check_uplift_possible(cfg, ctx.source.experiment is not None, ctx.source.generator is not None)
    storage = u.storage or os.path.join(ctx.out_dir, "uplift")
    k = len(ctx.source.class_names)
    results: dict[str, dict] = {}
    for fraction in u.fractions:
        n_real = subset_size(fraction, len(ctx.real_train), k)
        base, mixed, generators, inversion_mse, start_mse = [], [], [], [], []
        for seed in range(u.seeds):
            subset_cfg = dataclasses.replace(ctx.source.data_cfg, max_images=n_real, subset_seed=seed)
            path = None
            if u.generator == "honest":
                gcfg = honest_config(ctx.source.experiment, fraction, n_real, seed, u, storage)
                subset_cfg = gcfg.data  # the classifier's real subset is exactly the generator's training data
                path = train_honest_generator(gcfg)
            generators.append(path or ctx.source.identity.get("path", ""))
            real = load_images(subset_cfg, "train")
            tag = f"uplift {fraction * 100:g}% seed {seed}"
            test = ctx.real_test
            real_only = _train_arm(real, None, cfg, seed, f"{tag} real", ctx.progress)
            acc_real = accuracy(real_only, test.images, test.labels)
            syn, inv = _synthetic_pool(ctx, path, seed, real, real_only)
            if inv is not None:
                log.info("%s: inverted %d real images, pixel mse %.4f -> %.4f", tag, len(real), inv.start_mse, inv.mse)
                inversion_mse.append(inv.mse)
                start_mse.append(inv.start_mse)
            log.info("%s: %d real images, %d synthetic", tag, len(real), len(syn))
            acc_mix = accuracy(_train_arm(real, syn, cfg, seed, f"{tag} real+syn", ctx.progress), test.images,
                               test.labels)
            log.info("%s: real only %.4f, real+synthetic %.4f", tag, acc_real, acc_mix)
            base.append(acc_real)
            mixed.append(acc_mix)
        diff = [100.0 * (m - b) for m, b in zip(mixed, base)]
        results[f"{fraction * 100:g}%"] = {
            "fraction": fraction, "num_real": n_real, "real_only": _stats(base),
            "real_plus_synthetic": _stats(mixed), "uplift_points": _stats(diff), "generators": generators,
        }
        if inversion_mse:
            results[f"{fraction * 100:g}%"]["inversion_mse"] = _stats(inversion_mse)
            results[f"{fraction * 100:g}%"]["inversion_start_mse"] = _stats(start_mse)
    return MetricOutput(
        results={"honest": u.generator == "honest", "by_fraction": results},
        settings=dataclasses.asdict(u) | {"storage": storage, "classifier_width": cfg.judge.width},
        counts={"real_test": len(ctx.real_test), "synthetic_per_run": u.num_synthetic},
    )
