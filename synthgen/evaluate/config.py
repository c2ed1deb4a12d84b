"""Typed, frozen config of ``synthgen evaluate``; load with ``load_config(EvalConfig, path, overrides)``.

Every size that costs time (samples, epochs, seeds, honest-generator steps) is a field here, so the
smoke config and the tests run the same code path as the full evaluation, only smaller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synthgen.config import DataConfig, check_minimums, check_ranges
from synthgen.errors import ConfigError
from synthgen.judge.config import FilterSpec, JudgeConfig


def registered_metrics() -> tuple[str, ...]:
    """Every metric of the registry (``synthgen.evaluate.metrics``), the only place that lists them.

    Imported here, not at the top: the registry imports the metric modules, and none of them imports
    this config, so asking the registry at call time keeps the import graph acyclic.
    """
    from synthgen.evaluate.metrics import metric_names

    return metric_names()


UPLIFT_GENERATORS = ("honest", "evaluated")
UPLIFT_POOLS = ("inversion", "prior")
UPLIFT_SETTINGS = ("few_labels", "long_tail")
# GAMO's long-tailed Fashion-MNIST (Mullick et al., ICCV 2019): training images per class, ratio 100
GAMO_FASHION_MNIST = (4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40)


@dataclass(frozen=True)
class CasConfig:
    num_train: int = 0  # synthetic training images; 0 = as many as the real training split
    epochs: int = 4  # passes over the synthetic images
    batch_size: int = 128  # images per Adam step
    lr: float = 1e-3  # Adam learning rate
    augment: bool = False  # random 2-px shifts
    seed: int = 0  # weight init and batch order
    # The real-data anchor is a classifier with this same recipe trained on the real training split
    # (it is the judge itself when the recipes match, so it costs nothing extra).


@dataclass(frozen=True)
class UpliftConfig:
    # few_labels: class-stratified subsets of the training split (fractions); long_tail: one seeded subset with
    # class_counts images per class, both arms drawing their real rows class-balanced, and the accuracy of the
    # rare_classes rarest classes reported beside the test accuracy
    setting: str = "few_labels"
    fractions: tuple[float, ...] = (
        0.01,
    )  # few_labels: subsets as fractions of the training split, e.g. [0.01, 0.1, 1.0]
    class_counts: tuple[int, ...] = GAMO_FASHION_MNIST  # long_tail: real training images per class, in class order
    rare_classes: int = 3  # long_tail: the rare accuracy is the mean test accuracy of this many rarest classes
    seeds: int = 3  # repeats per subset: seed s picks the subset, the classifier init and its generator
    generator: str = "honest"  # honest: a generator trained on the subset only; evaluated: the evaluated one (leaks)
    num_synthetic: int = 10000  # synthetic pool per (subset, seed)
    # how the pool is drawn: inversion = around each real image of the subset (z_i + sigma * eps, z_i its
    # inverted latent), so the pool varies the subset's own images; prior = z ~ N(0, I), balanced labels
    pool: str = "inversion"
    inversion_sigma: float = 0.7  # pool=inversion: latent noise around each inverted image (0 = reconstructions)
    inversion_steps: int = 300  # pool=inversion: Adam steps per inverted image
    # pool=inversion: synthetic images per class, in `synthgen sample --around --class-weights` terms: data =
    # every real image varied in turn (the subset's class mix), uniform = as many per class (a rare class's
    # images get more variations each), or a YAML/JSON file {class: weight}; auto = data for few_labels,
    # uniform for long_tail
    class_weights: str = "auto"
    synthetic_fraction: float = 0.25  # mixing ratio: share of every training batch drawn from the synthetic pool
    # classifier Adam steps, the same for both arms: enough for the real-only baseline to converge, so an
    # uplift is not just the extra images making up for an undertrained baseline
    steps: int = 2400
    batch_size: int = 64  # images per classifier step
    lr: float = 1e-3  # classifier Adam learning rate
    augment: bool = True  # random shifts on every batch: keeps the real-only baseline strong
    # training steps of each honest generator: the dominant cost of uplift; too few leave a generator of
    # a few hundred images mode-collapsed, and its pool then adds little variety
    generator_steps: int = 6000
    generator_diffaugment: str = "translation,cutout"  # DiffAugment policy for the honest generators
    # section.key=value overrides of the evaluated run's recipe for the honest generators: half-width nets
    # (faster, and a few hundred images do not need more), an EMA that starts early (short runs), and LeCam
    # against the discriminator overfitting so few images
    generator_overrides: tuple[str, ...] = (
        "model.arch.g_channels=32",
        "model.arch.d_channels=32",
        "model.ema_start=100",
        "model.ema_decay=0.995",
        "model.lecam_weight=0.3",
    )
    storage: str = ""  # folder for honest generator runs; "" = <out>/uplift (reused when already trained)
    # pool=prior only. judge:T = each synthetic image is the first of its candidate latents that the real-only
    # classifier of the same subset and seed gives >= T for its label (an honest judge: it saw only the subset)
    filter: FilterSpec | None = None
    filter_max_candidates: int = 16  # latents tried per synthetic image when filtering


@dataclass(frozen=True)
class TransferConfig:
    # seed s picks the A and B subsets (subset_seed), the classifier's init and batch order, the generic
    # augmentation and a noisy translator's dropout masks; every arm of one seed shares them
    seeds: tuple[int, ...] = (0, 1, 2)
    # seeds these settings (or the translator's recipe) were chosen on: the other seeds are also summarised
    # alone, the confirmation that counts (as experiments/uplift_table.py --choosing); () = none chosen on
    choosing_seeds: tuple[int, ...] = ()
    num_source: int = 20000  # A images per seed (the half the translator's B images are not): source arms, translated
    num_oracle: int = 20000  # B images with their labels: the oracle arm
    label_fraction: float = 0.01  # few_b arms: this share of num_oracle B labels (0.01 -> 200), >= 1 per class
    synthetic_fraction: float = 0.5  # few_b_plus_*: share of every batch drawn from the translated / augmented A
    steps: int = 2400  # classifier Adam steps, the same for every arm
    batch_size: int = 64  # images per classifier step
    lr: float = 1e-3  # classifier Adam learning rate
    augment: bool = True  # random 2-px shifts on every batch of every arm
    num_threads: int = 0  # torch CPU threads while training and scoring each classifier; 0 = leave torch's setting
    generic_copies: int = 3  # generic augmentation: augmented copies of each A image (pool = num_source x this)
    generic_jitter: float = 0.4  # generic: ColorJitter brightness, contrast and saturation factors in [1-j, 1+j]
    generic_hue: float = 0.1  # generic: ColorJitter hue shift in [-h, h] (at most 0.5)
    generic_dark: float = 0.2  # generic: pixels darker than this (in [0, 1], soft ramp) take the background colour
    generic_noise: float = 0.05  # generic: std of the added Gaussian pixel noise, in [0, 1] pixel units
    # classifier arms to train (synthgen.evaluate.transfer.ARMS); () = all. A subset measures a new arm without
    # retraining the others; the summaries and targets then cover the comparisons whose arms were run
    arms: tuple[str, ...] = ()
    chunk_size: int = 64  # translation forward batch: a noisy translator's dropout masks are drawn per chunk


@dataclass(frozen=True)
class ReportConfig:
    enabled: bool = True  # write report.html beside metrics.jsonl
    samples_per_class: int = 10  # columns of the per-class sample grid
    nearest_queries: int = 10  # generated samples shown with their nearest real training images
    nearest_k: int = 5  # neighbours shown per sample
    max_grids: int = 8  # training grids over time shown (evenly spaced, always the last)


@dataclass(frozen=True)
class EvalConfig:
    checkpoint: str = ""  # run folder, checkpoint-NNNNNN folder or URI to evaluate (or use shards)
    shards: str = ""  # shard folder / URI written by `synthgen sample` to evaluate instead
    out: str = ""  # folder for metrics.jsonl + report.html; "" = <run folder>/eval or <shard folder>/eval
    metrics: tuple[str, ...] = field(default_factory=registered_metrics)  # registered metrics to compute, in order
    num_samples: int = 10000  # generated images for fd/kid/pr/dc/label_acc (shards: the first N rows)
    seed: int = 0  # seed of the generated latents and of every random subset
    use_ema: bool = True  # evaluate the EMA generator weights (what sampling uses)
    batch_size: int = 500  # generator batch size
    filter: FilterSpec | None = None  # checkpoints: judge filter as in `synthgen sample --filter`, e.g. judge:0.9
    filter_max_candidates: int = 16  # judge filter: latents tried per image before the best one is kept
    data_from_checkpoint: bool = True  # take source/root/resolution/channels from the checkpoint's run
    data: DataConfig = field(
        default_factory=DataConfig
    )  # real data (its max_images / class_counts are ignored: full splits)
    kid_subsets: int = 100  # KID: number of random subsets
    kid_subset_size: int = 1000  # KID: subset size (capped by the smaller set)
    pr_k: int = 3  # precision/recall: k of the k-NN radii
    dc_k: int = 5  # density/coverage: k of the k-NN radii
    judge: JudgeConfig = field(default_factory=JudgeConfig)  # feature extractor / label judge
    cas: CasConfig = field(default_factory=CasConfig)  # classification accuracy score
    uplift: UpliftConfig = field(
        default_factory=UpliftConfig
    )  # augmentation uplift on small or long-tailed real subsets
    transfer: TransferConfig = field(default_factory=TransferConfig)  # translation checkpoints: A -> B vs B's labels
    report: ReportConfig = field(default_factory=ReportConfig)  # report.html contents

    def validate(self) -> None:
        """Check what types alone cannot express.

        Raises:
            ConfigError: naming the key, the bad value and what is allowed.
        """
        if bool(self.checkpoint) == bool(self.shards):
            raise ConfigError(
                "evaluate needs exactly one source: pass --checkpoint RUN_OR_CKPT or --shards OUT "
                f"(got checkpoint={self.checkpoint!r}, shards={self.shards!r})"
            )
        registered = registered_metrics()
        unknown = [m for m in self.metrics if m not in registered]
        if unknown or not self.metrics:
            raise ConfigError(
                f"metrics={list(self.metrics)!r} is invalid: choose a non-empty list of {list(registered)}"
            )
        if len(set(self.metrics)) != len(self.metrics):
            raise ConfigError(f"metrics={list(self.metrics)!r} lists a metric twice")
        self._check_combinations()
        check_ranges(self._range_checks())
        check_minimums(self, EVAL_MINIMUMS)

    def _check_combinations(self) -> None:
        """Options that only mean something together with another (a filter without the pool it judges)."""
        if self.uplift.class_weights not in ("auto", "data") and self.uplift.pool != "inversion":
            raise ConfigError(
                f"uplift.class_weights={self.uplift.class_weights!r} shapes the inversion pool; prior "
                "pools are class-balanced: drop uplift.class_weights, or use uplift.pool=inversion"
            )
        if self.uplift.filter and self.uplift.pool != "prior":
            raise ConfigError(
                f"uplift.filter={self.uplift.filter} judges draws from the prior: add --set "
                "uplift.pool=prior, or drop uplift.filter"
            )
        if self.filter and not self.checkpoint:
            raise ConfigError(
                f"filter={self.filter} applies to --checkpoint only: shards are filtered when they "
                "are sampled (synthgen sample --filter); drop the filter or evaluate the checkpoint"
            )

    def _range_checks(self) -> list[tuple[bool, str, Any, str]]:
        """(holds, key, value, what is allowed) for each bound that is not a plain minimum (``EVAL_MINIMUMS``)."""
        u = self.uplift
        return [
            (u.setting in UPLIFT_SETTINGS, "uplift.setting", u.setting, f"one of {list(UPLIFT_SETTINGS)}"),
            (
                len(u.fractions) >= 1 and all(0 < f <= 1 for f in u.fractions),
                "uplift.fractions",
                list(u.fractions),
                "a non-empty list of fractions in (0, 1], e.g. [0.01, 0.1, 1.0] (1.0 = the full split)",
            ),
            (
                u.setting != "long_tail" or (len(u.class_counts) >= 2 and all(n >= 1 for n in u.class_counts)),
                "uplift.class_counts",
                list(u.class_counts),
                "one count >= 1 per class, in class order, e.g. [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40]",
            ),
            (
                u.setting != "long_tail" or 1 <= u.rare_classes < len(u.class_counts),
                "uplift.rare_classes",
                u.rare_classes,
                f">= 1 and fewer than the {len(u.class_counts)} classes of uplift.class_counts, e.g. 3",
            ),
            (
                u.class_weights.strip() != "",
                "uplift.class_weights",
                u.class_weights,
                "auto, data, uniform or a YAML/JSON file of {class name: weight}",
            ),
            (u.generator in UPLIFT_GENERATORS, "uplift.generator", u.generator, f"one of {list(UPLIFT_GENERATORS)}"),
            (u.pool in UPLIFT_POOLS, "uplift.pool", u.pool, f"one of {list(UPLIFT_POOLS)}"),
            (0 < u.synthetic_fraction < 1, "uplift.synthetic_fraction", u.synthetic_fraction, "in (0, 1), e.g. 0.5"),
            *self._transfer_checks(),
        ]

    def _transfer_checks(self) -> list[tuple[bool, str, Any, str]]:
        """The bounds of the transfer section that are not plain minimums."""
        from synthgen.evaluate.transfer import ARMS  # the arms live with the work; imported only to validate

        t = self.transfer
        return [
            (
                set(t.arms) <= set(ARMS) and len(set(t.arms)) == len(t.arms),
                "transfer.arms",
                list(t.arms),
                f"distinct names out of {list(ARMS)}, or [] for all",
            ),
            (
                len(t.seeds) >= 1 and len(set(t.seeds)) == len(t.seeds) and all(s >= 0 for s in t.seeds),
                "transfer.seeds",
                list(t.seeds),
                "a non-empty list of distinct seeds >= 0, e.g. [0, 1, 2]",
            ),
            (
                set(t.choosing_seeds) <= set(t.seeds),
                "transfer.choosing_seeds",
                list(t.choosing_seeds),
                f"a subset of transfer.seeds={list(t.seeds)} (the seeds settings were chosen on), or []",
            ),
            (0 < t.label_fraction <= 1, "transfer.label_fraction", t.label_fraction, "in (0, 1], e.g. 0.01"),
            (
                0 < t.synthetic_fraction < 1,
                "transfer.synthetic_fraction",
                t.synthetic_fraction,
                "in (0, 1), e.g. 0.5",
            ),
            (t.lr > 0, "transfer.lr", t.lr, "> 0, e.g. 0.001"),
            (0 <= t.generic_jitter < 1, "transfer.generic_jitter", t.generic_jitter, "in [0, 1), e.g. 0.4"),
            (0 <= t.generic_hue <= 0.5, "transfer.generic_hue", t.generic_hue, "in [0, 0.5], e.g. 0.1"),
            (0 < t.generic_dark <= 1, "transfer.generic_dark", t.generic_dark, "in (0, 1], e.g. 0.2"),
            (t.generic_noise >= 0, "transfer.generic_noise", t.generic_noise, ">= 0 (0 = no noise), e.g. 0.05"),
        ]


# dotted key -> its smallest allowed value (and what that value means), checked by EvalConfig.validate
EVAL_MINIMUMS: dict[str, int | tuple[int, str]] = {
    "filter_max_candidates": (1, ", e.g. 16"),
    "num_samples": 10,
    "batch_size": 1,
    "kid_subsets": 1,
    "kid_subset_size": 2,
    "pr_k": 1,
    "dc_k": 1,
    "judge.epochs": 1,
    "judge.max_train_images": 0,
    "judge.width": 1,
    "cas.num_train": (0, " (0 = the real training split's size)"),
    "cas.epochs": 1,
    "uplift.seeds": 1,
    "uplift.num_synthetic": 1,
    "uplift.inversion_sigma": (0, ", e.g. 0.7"),
    "uplift.inversion_steps": (0, ", e.g. 300"),
    "uplift.steps": 1,
    "uplift.generator_steps": 1,
    "uplift.filter_max_candidates": 1,
    "transfer.num_source": 1,
    "transfer.num_oracle": 1,
    "transfer.steps": 1,
    "transfer.batch_size": (2, ", e.g. 64"),
    "transfer.num_threads": (0, " (0 = torch's setting)"),
    "transfer.generic_copies": (1, ", e.g. 3"),
    "transfer.chunk_size": (1, ", e.g. 64"),
    "report.samples_per_class": 1,
    "report.nearest_k": 1,
    "report.max_grids": 1,
}
