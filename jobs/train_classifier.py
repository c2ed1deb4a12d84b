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
(``synthgen.data.SyntheticShardDataset``, local folder or pyarrow URI), their labels are checked against
the real class order (``MixedDataset``: a mismatch is an error, never a silent relabel), and mixing is a
per-batch ratio (``MixedBatchSampler`` in a plain ``DataLoader``; the uplift metric mixes the same way).
``real`` and ``real+synthetic`` train for the same number of steps, so their accuracies compare at equal
compute. The model is synthgen's SmallCNN (the evaluation judge's architecture); swap in your own.

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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # the job's working_dir: run from a checkout without installing

import numpy as np  # noqa: E402

from synthgen.cli_args import EXIT_CODES_HELP, add_config_arguments, config_path, run_guarded  # noqa: E402
from synthgen.config import DataConfig, dump_yaml, load_config, to_dict  # noqa: E402
from synthgen.errors import ConfigError, ShardError  # noqa: E402
from synthgen.log import get_logger, setup_logging  # noqa: E402

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
        for ok, key, value, allowed in checks:
            if not ok:
                raise ConfigError(f"{key}={value!r} is invalid: must be {allowed}")


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

    from synthgen.data import ImageData, ImageDataset, MixedDataset, SyntheticShardDataset

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


def batches(cfg: ClassifierJobConfig, real_train, synthetic, empty) -> tuple:
    """The training batches of ``cfg.train_on``: one mixing path (``synthgen.data.mix``) for all three.

    ``real`` has no synthetic rows per batch, ``synthetic`` no real ones, ``real+synthetic`` a
    ``synthetic_fraction`` share of every batch. All steps form one sampler epoch, so each part is walked
    in shuffled passes, every image once before any repeats (``class_balanced``: the real rows draw their
    classes uniformly, then an image of that class).

    Returns:
        (DataLoader of uint8 images [B, C, H, W] and labels [B], steps, batch size).
    """
    import torch

    from synthgen.data import ImageDataset, MixedBatchSampler, MixedDataset
    from synthgen.data.mix import synthetic_per_batch

    real = ImageDataset(real_train if cfg.train_on != "synthetic" else empty, output="tensor")
    syn = synthetic if cfg.train_on != "real" else ImageDataset(empty, output="tensor")
    mixed = MixedDataset(real, syn)  # both parts already follow the real class order
    primary = len(syn) if cfg.train_on == "synthetic" else len(real)
    batch = cfg.batch_size if cfg.train_on == "real+synthetic" else min(cfg.batch_size, primary)
    steps = cfg.steps or max(1, cfg.epochs * (primary // batch))  # same steps for real and real+synthetic
    if cfg.train_on == "real+synthetic":
        k = synthetic_per_batch(batch, cfg.synthetic_fraction)  # synthetic rows per batch
    else:
        k = batch if cfg.train_on == "synthetic" else 0
    sampler = MixedBatchSampler(mixed, batch, k, num_batches=steps, seed=cfg.seed, class_balanced=cfg.class_balanced)
    return torch.utils.data.DataLoader(mixed, batch_sampler=sampler), steps, batch


def fit_classifier(cfg: ClassifierJobConfig, real_train, synthetic, real_test, progress: bool = True) -> tuple:
    """A SmallCNN trained as ``cfg.train_on`` says (``batches``), seeded by ``cfg.seed``.

    Returns:
        (the trained model, steps, batch size).
    """
    import torch

    from synthgen.data import ImageData
    from synthgen.judge.classifier import fit
    from synthgen.models.classifier import SmallCNN

    empty = ImageData("none", real_test.images[:0], real_test.labels[:0], real_test.class_names)
    loader, steps, batch = batches(cfg, real_train, synthetic, empty)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    c, h, _ = real_test.image_shape
    torch.manual_seed(cfg.seed)  # weight init
    model = SmallCNN(c, len(real_test.class_names), h, width=cfg.width)
    fit(
        model,
        loader,
        steps=steps,
        lr=cfg.lr,
        seed=cfg.seed,
        augment=cfg.augment,
        progress=progress,
        desc=f"classifier on {cfg.train_on}",
    )
    return model, steps, batch


def filter_synthetic(cfg: ClassifierJobConfig, real_train, synthetic, real_test, progress: bool = True) -> tuple:
    """Keep the synthetic images that a classifier of the real images alone calls their label.

    The filter is ``cfg``'s own recipe trained with ``train_on=real`` (so it is exactly the real-only arm: same
    steps, seed, batches), and it sees nothing beyond the real subset, so filtering stays honest. A synthetic
    row is kept when that classifier's softmax probability of its label is >= ``cfg.filter_threshold``.

    Returns:
        (the kept rows, a dataset like ``synthetic``; {"filter_threshold", "synthetic_before_filter",
        "synthetic_kept_per_class", "real_only_accuracy"}).

    Raises:
        ConfigError: the threshold keeps no synthetic image.
    """
    import dataclasses

    import torch

    from synthgen.data import ImageData, ImageDataset, MixedDataset
    from synthgen.judge.classifier import label_probability, predict_logits

    real_cfg = dataclasses.replace(cfg, train_on="real")
    model, _, _ = fit_classifier(real_cfg, real_train, None, real_test, progress)
    model.eval()
    rows = [synthetic[i] for i in range(len(synthetic))]
    images = torch.stack([img for img, _ in rows])  # uint8 [N, C, H, W]
    labels = torch.tensor([int(y) for _, y in rows], dtype=torch.int64)  # [N], real class order
    with torch.inference_mode():  # the same p(label | image) as sampling's judge filter, 1000 images at a time
        prob = torch.cat(
            [label_probability(model, images[i : i + 1000], labels[i : i + 1000]) for i in range(0, len(labels), 1000)]
        ).numpy()  # [N]
    labels = labels.numpy()
    keep = np.flatnonzero(prob >= cfg.filter_threshold)
    if len(keep) == 0:
        raise ConfigError(
            f"filter_threshold={cfg.filter_threshold} keeps none of the {len(labels)} synthetic images "
            f"(the highest p(label) is {prob.max():.3f}); lower it"
        )
    test_acc = float((predict_logits(model, real_test.images).argmax(axis=1) == real_test.labels).mean())
    names = tuple(real_test.class_names)
    none = ImageData("none", real_test.images[:0], real_test.labels[:0], names)
    kept = MixedDataset(
        ImageDataset(none, output="tensor"), torch.utils.data.Subset(synthetic, keep.tolist()), synthetic_classes=names
    )  # labels are already in the real order
    info = {
        "filter_threshold": cfg.filter_threshold,
        "synthetic_before_filter": len(labels),
        "synthetic_kept_per_class": dict(zip(names, np.bincount(labels[keep], minlength=len(names)).tolist())),
        "real_only_accuracy": test_acc,
    }
    get_logger().info(
        f"filter {cfg.filter_threshold}: kept {len(keep)} of {len(labels)} synthetic images "
        f"(real-only classifier: test accuracy {test_acc:.4f})"
    )
    return kept, info


def train_and_test(cfg: ClassifierJobConfig, real_train, synthetic, real_test, progress: bool = True) -> dict:
    """Train a SmallCNN as ``cfg.train_on`` says and test it on ``real_test``.

    Args:
        cfg: the job config.
        real_train: ImageData of real training images (None when train_on=synthetic).
        synthetic: torch dataset of (uint8 image tensor, label in the real class order), e.g.
            ``load_synthetic``'s (None when train_on=real).
        real_test: ImageData of the real test split.
        progress: log a progress line every ~10 s.

    Returns:
        {"accuracy", "per_class_accuracy", "rare_classes", "rare_accuracy", "real_class_counts", "num_real",
        "num_synthetic", "steps", "seconds", ...}; ``rare_classes`` (names, rarest first) and ``rare_accuracy``
        (their mean test accuracy) are None when the real training classes are balanced (or ``rare_classes`` is
        not fewer than the classes).
    """
    from synthgen.data.subset import rarest_classes
    from synthgen.evaluate.uplift import rare_accuracy
    from synthgen.judge.classifier import per_class_accuracy, predict_logits

    t0 = time.time()
    model, steps, batch = fit_classifier(cfg, real_train, synthetic, real_test, progress)
    pred = predict_logits(model, real_test.images).argmax(axis=1)  # [N_test]
    per_class = per_class_accuracy(pred, real_test.labels, real_test.class_names)
    names = tuple(real_test.class_names)
    counts = (
        np.bincount(real_train.labels, minlength=len(names)).tolist()
        if real_train is not None
        else list(cfg.data.class_counts) or None
    )  # real training images per class
    rare = (
        rarest_classes(counts, cfg.rare_classes)
        if counts and min(counts) < max(counts) and cfg.rare_classes < len(names)
        else None
    )
    return {
        "accuracy": float((pred == real_test.labels).mean()),
        "per_class_accuracy": per_class,
        "rare_classes": [names[c] for c in rare] if rare else None,
        "rare_accuracy": rare_accuracy(per_class, names, rare) if rare else None,
        "real_class_counts": counts,
        "class_balanced": cfg.class_balanced,
        "train_on": cfg.train_on,
        "num_real": 0 if real_train is None or cfg.train_on == "synthetic" else len(real_train),
        "num_synthetic": 0 if synthetic is None or cfg.train_on == "real" else len(synthetic),
        "synthetic_fraction": cfg.synthetic_fraction if cfg.train_on == "real+synthetic" else None,
        "num_test": len(real_test),
        "steps": steps,
        "batch_size": batch,
        "seconds": round(time.time() - t0, 2),
    }


def run(cfg: ClassifierJobConfig, progress: bool = True) -> dict:
    """Load the data ``cfg`` names, train, test; write ``cfg.out`` when set. Returns the result dict.

    Raises:
        ConfigError / DataError / ShardError: bad config, real data or shards (nothing is written).
    """
    from synthgen.data import load_images, whole_split

    cfg.validate()
    real_test = load_images(whole_split(cfg.data), "test")
    real_train = load_images(cfg.data, "train") if cfg.train_on != "synthetic" else None
    synthetic = None
    if cfg.train_on != "real":
        synthetic = load_synthetic(cfg, real_test.class_names, real_test.image_shape)
    filter_info: dict = {}
    if cfg.filter_threshold > 0.0:
        synthetic, filter_info = filter_synthetic(cfg, real_train, synthetic, real_test, progress)
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
