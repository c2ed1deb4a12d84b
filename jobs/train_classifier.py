"""Ray job (and the consumer's example): train a classifier on real, synthetic or real+synthetic images,
then print its accuracy on the real test split.

    python jobs/train_classifier.py --config jobs/configs/train_classifier.yaml \
        --set shards=runs/fashion_mnist/synthetic --set train_on=real+synthetic --set synthetic_fraction=0.5
    python jobs/train_classifier.py --config jobs/configs/train_classifier.yaml --smoke-test   # ~a minute
    ray job submit --working-dir . -- python jobs/train_classifier.py --config jobs/configs/train_classifier.yaml \
        --set shards=s3://bucket/synthgen/fashion_mnist/synthetic

Options: --config (default jobs/configs/train_classifier.yaml), --set key=value (repeatable),
--dry-run (print the resolved config, read nothing), --smoke-test (the config's X_smoke.yaml sibling).

What it shows a classifier author: the shards load through the public torch dataset
(``synthgen.data.SyntheticShardDataset``, local folder or pyarrow URI) and their labels are checked against
the real class order (``MixedDataset``: a mismatch is an error, never a silent relabel). Training is
``synthgen.classify``, the very code of the uplift metric's arms: a per-batch mixing ratio (``MixedBatchSampler``
in a plain ``DataLoader``), the same seeded SmallCNN recipe and the same honest filter, so this job and the metric
give the same accuracy for the same images, settings and seed. ``real`` and ``real+synthetic`` train for the same
number of steps, so their accuracies compare at equal compute. The model is synthgen's SmallCNN (the evaluation
judge's architecture); swap in your own.

A long tail (the uplift metric's ``uplift.setting=long_tail``): ``data.class_counts`` picks the same seeded
per-class subset the honest generator trained on, ``class_balanced=true`` draws the real rows of every batch
class-balanced, and the result adds the mean test accuracy of the ``rare_classes`` rarest classes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # the job's working_dir: run from a checkout without installing

import numpy as np  # noqa: E402

from synthgen.cli_args import EXIT_CODES_HELP, add_config_arguments, config_path, run_guarded  # noqa: E402
from synthgen.config import DataConfig, check_ranges, dump_yaml, load_config, to_dict  # noqa: E402
from synthgen.data import ImageData  # noqa: E402
from synthgen.errors import ShardError  # noqa: E402
from synthgen.log import get_logger, setup_logging  # noqa: E402

if TYPE_CHECKING:  # synthgen.classify imports torch: loaded when the job trains, not for --help / --dry-run
    from synthgen.classify import ClassifierSettings

DEFAULT_CONFIG = os.path.join("jobs", "configs", "train_classifier.yaml")
SMOKE_TRAIN_CONFIG = os.path.join(ROOT, "jobs", "configs", "fashion_mnist_smoke.yaml")
TRAIN_ON = ("real", "synthetic", "real+synthetic")


@dataclass(frozen=True)
class ClassifierJobConfig:
    data: DataConfig = field(
        default_factory=DataConfig
    )  # real data: train split (max_images / class_counts = a subset), whole test split
    shards: str = ""  # synthetic shard folder or URI (`synthgen sample --out`, the pipeline's <run folder>/synthetic)
    train_on: str = "real+synthetic"  # real | synthetic | real+synthetic
    synthetic_fraction: float = 0.5  # real+synthetic: share of every batch drawn from the synthetic images
    max_synthetic: int = 0  # synthetic images to load, the first N by sample_id (0 = all)
    remap_classes: bool = False  # accept shards with the real classes in another order (labels mapped by name)
    epochs: int = 5  # passes over the real training images (synthetic: over the synthetic ones)
    steps: int = 0  # exact number of Adam steps instead of epochs (0 = from epochs)
    batch_size: int = 128  # images per Adam step
    lr: float = 1e-3  # Adam learning rate, cosine-decayed to 0
    width: int = 32  # SmallCNN first-block channels
    augment: bool = True  # random 2-pixel shifts on every batch
    class_balanced: bool = False  # real rows of every batch draw their classes uniformly (a long-tailed real set)
    rare_classes: int = 3  # rare_accuracy: mean test accuracy of this many classes with the fewest real training images
    # real+synthetic: keep only the synthetic images that a real-only classifier of this recipe (trained first)
    # gives at least this probability of their label, e.g. 0.5; 0 = keep all
    filter_threshold: float = 0.0
    seed: int = 0  # weight init and batch order
    num_threads: int = 0  # torch CPU threads; 0 = torch's default (every core). 1 is faster on a busy machine
    out: str = ""  # optional local JSON file for the result (accuracy, counts, config)

    def validate(self) -> None:
        """Check what types alone cannot express.

        Raises:
            ConfigError: naming the key, the bad value and what is allowed.
        """
        checks = [
            (self.train_on in TRAIN_ON, "train_on", self.train_on, f"one of {list(TRAIN_ON)}"),
            (
                self.train_on == "real" or self.shards.strip() != "",
                "shards",
                self.shards,
                f"a shard folder or URI when train_on={self.train_on!r} (--set shards=runs/<run>/synthetic)",
            ),
            (0.0 < self.synthetic_fraction < 1.0, "synthetic_fraction", self.synthetic_fraction, "in (0, 1), e.g. 0.5"),
            (self.max_synthetic >= 0, "max_synthetic", self.max_synthetic, ">= 0 (0 = all)"),
            (self.epochs >= 1 or self.steps >= 1, "epochs", self.epochs, ">= 1 (or steps >= 1)"),
            (self.steps >= 0, "steps", self.steps, ">= 0 (0 = from epochs)"),
            (self.batch_size >= 2, "batch_size", self.batch_size, ">= 2"),
            (self.lr > 0, "lr", self.lr, "> 0"),
            (self.width >= 1, "width", self.width, ">= 1"),
            (self.num_threads >= 0, "num_threads", self.num_threads, ">= 0 (0 = torch's default)"),
            (self.rare_classes >= 1, "rare_classes", self.rare_classes, ">= 1, e.g. 3"),
            (
                0.0 <= self.filter_threshold < 1.0,
                "filter_threshold",
                self.filter_threshold,
                "in [0, 1), e.g. 0.5 (0 = off)",
            ),
            (
                self.filter_threshold == 0.0 or self.train_on == "real+synthetic",
                "filter_threshold",
                self.filter_threshold,
                f"0 with train_on={self.train_on!r} (it filters the synthetic part of real+synthetic)",
            ),
        ]
        self.data.validate()
        check_ranges(checks)


def load_synthetic(cfg: ClassifierJobConfig, real_classes, image_shape):
    """The shard folder through the public loader, with labels in the real class order.

    Returns:
        A torch dataset of ``(image uint8 tensor [C, H, W], label)`` (``synthgen.data.SyntheticShardDataset``,
        its first ``cfg.max_synthetic`` rows, inside a ``MixedDataset`` with no real part, which maps each
        label to the real index of its class name); ``.classes`` is ``real_classes``.

    Raises:
        ShardError: missing/corrupt shards, other classes than the real data, or another image shape.
    """
    import torch

    from synthgen.data import ImageDataset, MixedDataset, SyntheticShardDataset

    shards = SyntheticShardDataset(cfg.shards, output="tensor")
    if tuple(shards.manifest.image_shape) != tuple(image_shape):
        raise ShardError(
            f"shards {cfg.shards!r} hold images {list(shards.manifest.image_shape)} but the real data "
            f"is {list(image_shape)}; set data.resolution / data.channels to the generator's data"
        )
    rows = torch.utils.data.Subset(shards, range(min(len(shards), cfg.max_synthetic or len(shards))))
    none = ImageData("none", np.zeros((0, *image_shape), np.uint8), np.zeros(0, np.int64), tuple(real_classes))
    # MixedDataset checks the class names (a mismatch is an error, never a silent relabel)
    return MixedDataset(
        ImageDataset(none, output="tensor"), rows, synthetic_classes=shards.classes, remap_classes=cfg.remap_classes
    )


def as_image_data(synthetic, class_names: tuple[str, ...]) -> ImageData:
    """The rows of a torch dataset of ``(uint8 image tensor [C, H, W], label)`` in memory (``synthgen.classify``'s
    input), read through a plain ``DataLoader``; an ``ImageData`` is returned as it is.

    Args:
        synthetic: e.g. ``load_synthetic``'s dataset, labels already in the real class order.
        class_names: the real class names.

    Returns:
        ImageData "synthetic": images uint8 [N, C, H, W], labels int64 [N], in the dataset's order.
    """
    import torch

    if isinstance(synthetic, ImageData):
        return synthetic
    parts = list(torch.utils.data.DataLoader(synthetic, batch_size=1000))  # [(uint8 [b, C, H, W], [b]), ...]
    if not parts:
        raise ShardError("the synthetic data set holds no image")
    images = torch.cat([x for x, _ in parts]).numpy()  # [N, C, H, W]
    labels = torch.cat([torch.as_tensor(y) for _, y in parts]).numpy().astype(np.int64)  # [N]
    return ImageData("synthetic", images, labels, tuple(class_names))


def training_parts(cfg: ClassifierJobConfig, real_train: ImageData | None, synthetic, class_names) -> tuple:
    """(real, synthetic) as ``cfg.train_on`` uses them: ImageData, or None for a part it does not train on."""
    real = real_train if cfg.train_on != "synthetic" else None
    syn = as_image_data(synthetic, tuple(class_names)) if cfg.train_on != "real" and synthetic is not None else None
    return real, syn


def settings_of(
    cfg: ClassifierJobConfig, real_train: ImageData | None, synthetic: ImageData | None
) -> ClassifierSettings:
    """The classifier recipe of ``cfg`` (``synthgen.classify``; the uplift metric's arms take the same).

    ``steps`` = ``cfg.steps``, else ``cfg.epochs`` passes over the real images (synthetic: over the synthetic ones),
    at least one step per epoch; real and real+synthetic runs get the same number.

    Args:
        cfg: the job config.
        real_train: the real training images (None when train_on=synthetic).
        synthetic: the synthetic images (None when train_on=real).

    Returns:
        The settings ``synthgen.classify`` trains with.
    """
    from synthgen.classify import ClassifierSettings

    primary = synthetic if cfg.train_on == "synthetic" else real_train
    batch = min(cfg.batch_size, len(primary)) if primary is not None and len(primary) else cfg.batch_size
    per_epoch = max(1, len(primary) // batch) if primary is not None else 1
    return ClassifierSettings(
        steps=cfg.steps or cfg.epochs * per_epoch,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        width=cfg.width,
        augment=cfg.augment,
        synthetic_fraction=cfg.synthetic_fraction,
        class_balanced=cfg.class_balanced,
        filter_threshold=cfg.filter_threshold,
        seed=cfg.seed,
        num_threads=cfg.num_threads,
    )


def train_and_test(
    cfg: ClassifierJobConfig, real_train: ImageData | None, synthetic, real_test: ImageData, progress: bool = True
) -> dict:
    """Train a SmallCNN as ``cfg.train_on`` says (``synthgen.classify.train_and_score``) and test it on ``real_test``.

    Args:
        cfg: the job config.
        real_train: real training images (None when train_on=synthetic).
        synthetic: synthetic images, labels in the real class order: ImageData or a torch dataset such as
            ``load_synthetic``'s (None when train_on=real).
        real_test: the real test split.
        progress: log a progress line every ~10 s.

    Returns:
        {"accuracy", "per_class_accuracy", "rare_classes", "rare_accuracy", "real_class_counts", "num_real",
        "num_synthetic", "steps", "seconds", ...}; ``rare_classes`` (names, rarest first) and ``rare_accuracy``
        (their mean test accuracy) are None when the real training classes are balanced (or ``rare_classes`` is
        not fewer than the classes).
    """
    from synthgen import classify

    t0 = time.time()
    real, syn = training_parts(cfg, real_train, synthetic, real_test.class_names)
    settings = settings_of(cfg, real, syn)
    arm = classify.train_and_score(
        real, syn, real_test, settings, progress=progress, desc=f"classifier on {cfg.train_on}"
    )
    names = tuple(real_test.class_names)
    counts = (
        np.bincount(real_train.labels, minlength=len(names)).tolist()
        if real_train is not None
        else list(cfg.data.class_counts) or None
    )  # real training images per class
    rare = classify.rare_classes(counts, cfg.rare_classes)
    return {
        "accuracy": arm.score.accuracy,
        "per_class_accuracy": arm.score.per_class,
        "rare_classes": [names[c] for c in rare] if rare else None,
        "rare_accuracy": classify.rare_accuracy(arm.score.per_class, names, rare) if rare else None,
        "real_class_counts": counts,
        "class_balanced": cfg.class_balanced,
        "train_on": cfg.train_on,
        "num_real": 0 if real is None else len(real),
        "num_synthetic": 0 if syn is None else len(syn),
        "synthetic_fraction": cfg.synthetic_fraction if cfg.train_on == "real+synthetic" else None,
        "num_test": len(real_test),
        "steps": settings.steps,
        "batch_size": classify.arm_batch_size(real, syn, settings),
        "seconds": round(time.time() - t0, 2),
    }


def run(cfg: ClassifierJobConfig, progress: bool = True) -> dict:
    """Load the data ``cfg`` names, filter (``filter_threshold``), train, test; write ``cfg.out`` when set.

    Returns:
        The result dict (``train_and_test``'s, plus the filter's counts, ``shards`` and ``config``).

    Raises:
        ConfigError / DataError / ShardError: bad config, real data or shards (nothing is written).
    """
    from synthgen import classify
    from synthgen.data import load_images, whole_split

    cfg.validate()
    real_test = load_images(whole_split(cfg.data), "test")
    real_train = load_images(cfg.data, "train") if cfg.train_on != "synthetic" else None
    synthetic = None
    if cfg.train_on != "real":  # the public loader, then in memory: synthgen.classify's input
        shards = load_synthetic(cfg, real_test.class_names, real_test.image_shape)
        synthetic = as_image_data(shards, real_test.class_names)
    filter_info: dict = {}
    if cfg.filter_threshold > 0.0:  # validate: only with train_on=real+synthetic, so both parts are loaded
        settings = settings_of(cfg, real_train, synthetic)
        synthetic, filter_info = classify.honest_filter(real_train, synthetic, real_test, settings, progress=progress)
    result = train_and_test(cfg, real_train, synthetic, real_test, progress=progress)
    result.update(filter_info)
    result["shards"] = cfg.shards if cfg.train_on != "real" else ""
    result["config"] = to_dict(cfg)
    if cfg.out:
        from synthgen.storage import atomic_write_text

        os.makedirs(os.path.dirname(os.path.abspath(cfg.out)), exist_ok=True)
        atomic_write_text(os.path.abspath(cfg.out), json.dumps(result, indent=2) + "\n")
    return result


def _smoke_shards(cfg: ClassifierJobConfig) -> list[str]:
    """--smoke-test without the pipeline smoke run's shards: sample an UNTRAINED generator instead."""
    import tempfile

    from synthgen.sample.config import SampleConfig
    from synthgen.sample.run import run_sample
    from synthgen.storage import is_uri
    from synthgen.train.untrained import write_random_checkpoint

    if cfg.train_on == "real" or is_uri(cfg.shards) or os.path.isfile(os.path.join(cfg.shards, "manifest.json")):
        return []
    from synthgen.config import ExperimentConfig

    tmp = tempfile.mkdtemp(prefix="synthgen-smoke-shards-")
    ckpt = write_random_checkpoint(os.path.join(tmp, "run"), load_config(ExperimentConfig, SMOKE_TRAIN_CONFIG))
    out = os.path.join(tmp, "synthetic")
    run_sample(
        SampleConfig(
            checkpoint=ckpt,
            out=out,
            num_samples=max(cfg.max_synthetic, 500),
            images_per_shard=250,
            batch_size=128,
            progress=False,
        )
    )
    get_logger().info(f"smoke: {cfg.shards!r} has no shards yet: using {out}, sampled from an UNTRAINED generator")
    return [f"shards={out}"]


def main(argv: list[str] | None = None) -> int:
    """Parse the job's arguments (the shared --config/--set/--dry-run/--smoke-test), train, test, print.

    Returns:
        0 ok, 1 runtime failure (data, shards), 2 config error (``synthgen.cli_args.run_guarded``).
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_CODES_HELP
    )
    add_config_arguments(
        parser,
        default_config=os.path.relpath(os.path.join(ROOT, DEFAULT_CONFIG)),
        config_help=f"YAML config (default: {DEFAULT_CONFIG})",
        set_example="train_on=real --set data.max_images=600",
        dry_run_help="print the resolved config and exit (reads no data)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    return run_guarded("jobs/train_classifier.py", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    """The job's body once the arguments are parsed; typed errors propagate to ``run_guarded``."""
    path = config_path(args)
    cfg = load_config(ClassifierJobConfig, path, args.overrides)
    cfg.validate()
    if args.dry_run:
        print(dump_yaml(cfg), end="")
        return 0
    if args.smoke_test:
        cfg = load_config(ClassifierJobConfig, path, [*args.overrides, *_smoke_shards(cfg)])
    result = run(cfg)
    mix = (
        f", {result['synthetic_fraction']:.0%} synthetic per batch" if result["synthetic_fraction"] is not None else ""
    )
    print(
        f"trained on {result['train_on']}: {result['num_real']} real + {result['num_synthetic']} synthetic "
        f"images{mix}, {result['steps']} steps of {result['batch_size']} ({result['seconds']:.0f}s)"
    )
    print("per class: " + ", ".join(f"{k} {v:.3f}" for k, v in result["per_class_accuracy"].items() if v is not None))
    if result["rare_accuracy"] is not None:
        print(f"rare classes ({', '.join(result['rare_classes'])}): {result['rare_accuracy']:.4f}")
    print(f"test accuracy: {result['accuracy']:.4f} on {result['num_test']} real test images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
