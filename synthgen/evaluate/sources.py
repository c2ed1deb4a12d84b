"""What gets evaluated: a generator checkpoint (images made in-process) or an existing shard dataset.

Generated sample ``i`` uses the sampling stage's counter-based latent ``latents_for([i], seed)`` (and
InfoGAN code values ``codes_for([i], seed)``, through the one ``prior_images`` path) and label ``i % K``,
so any prefix of ``n`` samples is balanced over classes (to within one) and the
first ``n`` images of a larger request are exactly the images of a request for ``n``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from synthgen.checkpoint import CheckpointInfo, load_generator
from synthgen.config import DataConfig, ExperimentConfig, from_dict, upgrade_legacy_config
from synthgen.data import ImageData, whole_split
from synthgen.errors import CheckpointError, ConfigError, ShardError
from synthgen.pixels import to_uint8
from synthgen.sample.filter import generate_filtered
from synthgen.sample.prior import prior_images
from synthgen.storage import is_uri

_CKPT_DIR = re.compile(r"^checkpoint-\d+$")


@dataclass(frozen=True)
class JudgeFilter:
    """Judge filtering of generated images (``synthgen.sample.filter``), as ``evaluate --set filter=judge:T``."""

    model: nn.Module  # the judge classifier
    threshold: float  # minimum probability of the requested label
    max_candidates: int  # latents tried per image before the best one is kept


@torch.inference_mode()
def generate_with(
    generator: nn.Module,
    num_classes: int,
    num_samples: int,
    seed: int = 0,
    batch_size: int = 500,
    start: int = 0,
    judge_filter: JudgeFilter | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``generator`` on samples ``start .. start + num_samples - 1``.

    With ``judge_filter``, each image is the first of its candidate latents the judge accepts, exactly
    as ``synthgen sample --filter`` makes it.

    Returns:
        (images uint8 [N, C, H, W], labels int64 [N]) with label(i) = i % num_classes.
    """
    generator.eval()
    ids = np.arange(start, start + num_samples, dtype=np.int64)
    labels = ids % num_classes  # [N] balanced for every prefix
    chunks = []
    for i in range(0, num_samples, batch_size):
        if judge_filter is not None:
            images, _, _ = generate_filtered(
                generator,
                judge_filter.model,
                ids[i : i + batch_size],
                labels[i : i + batch_size],
                seed=seed,
                threshold=judge_filter.threshold,
                max_candidates=judge_filter.max_candidates,
            )
            chunks.append(images.numpy())
            continue
        y = torch.from_numpy(labels[i : i + batch_size])  # [B]
        x = prior_images(generator, ids[i : i + batch_size], y, seed)  # [B, C, H, W] in [-1, 1]
        chunks.append(to_uint8(x).numpy())
    images = np.concatenate(chunks) if chunks else np.zeros((0, 1, 1, 1), np.uint8)
    return images, labels


def load_checkpoint_generator(path: str, use_ema: bool = True) -> tuple[nn.Module, CheckpointInfo]:
    """``load_generator`` with a weights/architecture mismatch turned into a CheckpointError.

    Raises:
        CheckpointError: nothing loadable at ``path``, or weights that do not fit this version's model.
    """
    try:
        return load_generator(path, use_ema=use_ema)
    except RuntimeError as exc:  # load_state_dict: missing keys / size mismatch
        raise CheckpointError(
            f"checkpoint {path!r} does not fit the current synthgen model code ({str(exc)[:300]}); "
            "evaluate it with the synthgen version that trained it, or retrain"
        ) from exc


def generate_images(
    path: str,
    num_samples: int,
    seed: int = 0,
    *,
    use_ema: bool = True,
    batch_size: int = 500,
    judge_filter: JudgeFilter | None = None,
) -> ImageData:
    """Generate ``num_samples`` balanced images from a checkpoint, deterministically for ``seed``.

    Args:
        path: run folder, checkpoint folder or URI.
        num_samples: how many images.
        seed: latent seed; the same (checkpoint, seed) always gives the same images.
        use_ema: use the EMA generator weights.
        batch_size: generator batch size (does not change the images).
        judge_filter: keep, per image, the first candidate latent this judge accepts.

    Returns:
        ImageData(name="generated", images uint8 [N, C, H, W], labels int64 [N] = i % K, class_names).

    Raises:
        CheckpointError: no loadable checkpoint at ``path``.
    """
    generator, info = load_checkpoint_generator(path, use_ema)
    images, labels = generate_with(
        generator, len(info.class_names), num_samples, seed, batch_size, judge_filter=judge_filter
    )
    return ImageData(name="generated", images=images, labels=labels, class_names=info.class_names)


def run_dir_of_checkpoint(info: CheckpointInfo, given: str) -> str | None:
    """The local run folder a checkpoint belongs to (for loss curves and grids), or None."""
    if is_uri(given) and not given.startswith("file://"):
        return None
    folder = os.path.abspath(info.path)
    if _CKPT_DIR.match(os.path.basename(folder)):
        return os.path.dirname(folder)
    return None


@dataclass
class Source:
    """A generator checkpoint or a shard folder, with the real data it should be compared to."""

    kind: str  # "checkpoint" | "shards"
    path: str  # what the user passed
    class_names: tuple[str, ...]  # label index -> name
    image_shape: tuple[int, int, int]  # (C, H, W)
    data_cfg: DataConfig  # the real data set (full splits) to compare with
    identity: dict[str, Any]  # recorded in every metric row: path, digest, step, ...
    run_dir: str | None = None  # run folder with metrics.jsonl / grids/, when known
    experiment: ExperimentConfig | None = None  # the training config (checkpoints; shards when recorded)
    generator: nn.Module | None = None  # checkpoints only
    translator: tuple[nn.Module, Any] | None = None  # translation checkpoints: (G, its TranslatorInfo), loaded once
    seed: int = 0  # latent seed
    batch_size: int = 500  # generator batch size
    judge_filter: JudgeFilter | None = None  # checkpoints only: keep images the judge accepts (set by evaluate)
    # label k is the real data's class k whatever the names: a translation into domain B, whose folders name the
    # classes their own way (the transfer metric maps them the same way)
    classes_by_index: bool = False
    _cache: ImageData | None = field(default=None, repr=False)

    def images(self, n: int) -> ImageData:
        """The first ``n`` synthetic images (fewer for a shard folder holding fewer)."""
        if self._cache is not None and len(self._cache) >= n:
            c = self._cache
            return ImageData(name=c.name, images=c.images[:n], labels=c.labels[:n], class_names=c.class_names)
        if self.kind == "checkpoint":
            have = 0 if self._cache is None else len(self._cache)
            imgs, labels = generate_with(
                self.generator,
                len(self.class_names),
                n - have,
                self.seed,
                self.batch_size,
                start=have,
                judge_filter=self.judge_filter,
            )
            if self._cache is not None:
                imgs = np.concatenate([self._cache.images, imgs])
                labels = np.concatenate([self._cache.labels, labels])
            self._cache = ImageData(name="generated", images=imgs, labels=labels, class_names=self.class_names)
        else:
            from synthgen.data.shard_dataset import load_shard_arrays

            self._cache = load_shard_arrays(self.path, limit=n)
        return self.images(min(n, len(self._cache)))


def open_checkpoint(
    path: str, data: DataConfig, data_from_checkpoint: bool, seed: int = 0, use_ema: bool = True, batch_size: int = 500
) -> Source:
    """Load a checkpoint's generator as a Source.

    Raises:
        CheckpointError: nothing loadable at ``path``.
    """
    generator, info = load_checkpoint_generator(path, use_ema)
    data_cfg = info.config.data if data_from_checkpoint else data
    return Source(
        kind="checkpoint",
        path=path,
        class_names=info.class_names,
        image_shape=info.image_shape,
        data_cfg=whole_split(data_cfg),
        identity={
            "kind": "checkpoint",
            "path": path,
            "resolved_path": info.path,
            "digest": info.digest,
            "step": info.step,
            "use_ema": use_ema,
            "seed": seed,
            "trained_on_max_images": info.config.data.max_images,
            "trained_on_class_counts": list(info.config.data.class_counts),
        },
        run_dir=run_dir_of_checkpoint(info, path),
        experiment=info.config,
        generator=generator,
        seed=seed,
        batch_size=batch_size,
    )


def open_shards(path: str, data: DataConfig, data_from_checkpoint: bool) -> Source:
    """Describe a shard folder as a Source (images are decoded on first use).

    The real data set is the one of the training run recorded in the manifest when there is one
    (and ``data_from_checkpoint``), else ``data``; that training config also lets the honest uplift
    train its per-subset generators with the same recipe.

    Raises:
        ShardError: no readable manifest at ``path``.
        ConfigError: the shards' image shape does not match the real data.
    """
    from synthgen.shards import read_manifest

    manifest = read_manifest(path)
    raw = manifest.raw
    data_cfg, experiment, by_index = data, None, False
    train_cfg = (raw.get("config") or {}).get("train")
    if isinstance(train_cfg, dict) and "data" in train_cfg:
        try:
            experiment = from_dict(ExperimentConfig, upgrade_legacy_config(train_cfg))
        except ConfigError as exc:
            raise ShardError(
                f"{path}: the manifest's training config is unreadable ({exc}); "
                "pass --set data_from_checkpoint=false and the real data with --set data.*"
            ) from exc
        if data_from_checkpoint:
            data_cfg, by_index = _output_domain(raw, experiment)
        if isinstance(raw.get("upscale"), dict):
            experiment = None  # honest uplift would retrain the cascade's low-resolution generator alone
    want = (data_cfg.channels, data_cfg.resolution, data_cfg.resolution)
    if tuple(manifest.image_shape) != want:
        raise ConfigError(
            f"shards {path} hold images {tuple(manifest.image_shape)} but the real data is {want}; "
            "set data.resolution / data.channels to match the shards"
        )
    ckpt = raw.get("checkpoint") or {}
    parent = os.path.dirname(os.path.abspath(path)) if not is_uri(path) else None
    run_dir = None
    if ckpt.get("resolved_path") and not is_uri(str(ckpt["resolved_path"])):
        candidate = os.path.dirname(os.path.abspath(str(ckpt["resolved_path"])))
        run_dir = candidate if os.path.isfile(os.path.join(candidate, "metrics.jsonl")) else None
    return Source(
        kind="shards",
        path=path,
        class_names=manifest.class_names,
        image_shape=tuple(manifest.image_shape),
        data_cfg=whole_split(data_cfg),
        identity={
            "kind": "shards",
            "path": path,
            "total": manifest.total,
            "checkpoint": ckpt,
            "manifest_created": raw.get("created"),
            "plan_digest": raw.get("plan_digest"),
        },
        run_dir=run_dir or (parent if parent and os.path.isfile(os.path.join(parent, "metrics.jsonl")) else None),
        experiment=experiment,
        classes_by_index=by_index,
    )


def _output_domain(raw: dict[str, Any], experiment: ExperimentConfig) -> tuple[DataConfig, bool]:
    """(the real images a shard dataset's images should look like, whether its labels match their classes by index):
    the upscaler's full-size set for a cascade (``sample --upscale``, whose manifest names its data), domain B by
    index for a ``--translate`` dataset of a translator with ``data_b``, else the training run's ``data:``.

    Raises:
        ShardError: a cascade's manifest from before its upscaler's data was recorded.
    """
    upscale = raw.get("upscale")
    if isinstance(upscale, dict):
        if not isinstance(upscale.get("data"), dict):
            raise ShardError(
                "the manifest's upscale entry does not name the upscaler's data (written by an older synthgen): pass "
                "--set data_from_checkpoint=false and the real full-size data with --set data.*"
            )
        return from_dict(DataConfig, upscale["data"]), False
    if raw.get("translate") and experiment.data_b is not None:
        return experiment.data_b, True
    return experiment.data, False


def translator_source(
    cfg: Any, G: nn.Module, info: Any, data_cfg: DataConfig, measures: str, **identity: Any
) -> Source:
    """An image -> image checkpoint (``synthgen.translation.load_translator``'s ``G, info``) as the evaluation's
    Source: compared with ``data_cfg``'s real images, no noise generator, ``measures`` = "translator" or
    "upscaler" (what ``--metrics all`` and the metric checks read), plus the extra ``identity`` entries."""
    return Source(
        kind="checkpoint",
        path=cfg.checkpoint,
        class_names=info.class_names,
        image_shape=info.output_shape,
        data_cfg=data_cfg,
        identity={
            "kind": "checkpoint",
            "path": cfg.checkpoint,
            "resolved_path": info.path,
            "digest": info.digest,
            "step": info.step,
            "use_ema": cfg.use_ema,
            "translation": True,
            "measures": measures,
            "model": info.config.model.name,
            **identity,
        },
        run_dir=run_dir_of_checkpoint(info, cfg.checkpoint),
        experiment=info.config,
        translator=(G, info),
    )
