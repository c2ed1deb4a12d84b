"""The judge: a SmallCNN trained on a real training split, cached per dataset, whose features feed every metric.

Inception weights cannot be downloaded here and do not fit 28x28 grayscale anyway, so quality is
measured in the feature space of a domain classifier ("FD in LeNet features"). A judge is identified
by a digest of the exact real data (train + test pixels and labels) and of its own training recipe,
so a changed data set or recipe can never silently reuse a stale judge. On disk (written atomically)::

    <cache_dir>/<source>-<key>/judge.pt     state_dict (loaded with torch.load(weights_only=True))
    <cache_dir>/<source>-<key>/judge.json   metadata: recipe, data digest, class names, real test accuracy
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from synthgen.config import DataConfig, to_dict
from synthgen.data import ImageData, load_images, stratified_subset, whole_split
from synthgen.errors import ConfigError
from synthgen.judge.classifier import accuracy, extract_features, predict_logits, train_classifier
from synthgen.judge.config import JudgeConfig
from synthgen.models.classifier import SmallCNN
from synthgen.storage import atomic_write_text

log = logging.getLogger("synthgen")

ARCH_VERSION = 1  # bump when SmallCNN changes shape: old cached judges then stop matching
WEIGHTS_FILE = "judge.pt"
META_FILE = "judge.json"


def default_cache_dir() -> str:
    """``$SYNTHGEN_CACHE/judges`` or ``~/.cache/synthgen/judges``."""
    root = os.environ.get("SYNTHGEN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "synthgen")
    return os.path.join(root, "judges")


@dataclass
class Judge:
    model: SmallCNN  # trained classifier in eval mode
    meta: dict[str, Any]  # judge.json contents (recipe, data digest, class names, test accuracy, ...)
    path: str  # cache folder it was loaded from / saved to
    real: tuple[ImageData, ImageData] | None = None  # the (train, test) splits it is keyed on
    _split_features: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def split_features(self, split: str) -> np.ndarray:
        """Features float32 [N, 128] of the whole real "train" or "test" split the judge is keyed on.

        Computed once per judge and kept beside it (``features-<split>.npy``, written atomically): the
        judge key covers the exact pixels, so they can never belong to other data.

        Raises:
            ConfigError: unknown split, or the features are not cached and no real data was given.
        """
        if split not in ("train", "test"):
            raise ConfigError(f"split={split!r} is invalid: must be 'train' or 'test'")
        if split in self._split_features:
            return self._split_features[split]
        data = None if self.real is None else self.real[0 if split == "train" else 1]
        file = os.path.join(self.path, f"features-{split}.npy")
        feats = None
        if os.path.isfile(file):
            try:
                feats = np.load(file, allow_pickle=False)
            except (OSError, ValueError):
                feats = None  # damaged: recompute below
            if feats is not None and (feats.ndim != 2 or (data is not None and len(feats) != len(data))):
                feats = None
        if feats is None:
            if data is None:
                raise ConfigError(f"judge {self.key}: no cached {split} features; pass the real data (real=...)")
            feats = self.features(data.images)
            tmp = os.path.join(self.path, f".features-{split}.npy.tmp-{os.getpid()}")
            with open(tmp, "wb") as fh:
                np.save(fh, feats)
            os.replace(tmp, file)
        self._split_features[split] = feats
        return feats

    @property
    def test_accuracy(self) -> float:
        """Top-1 accuracy on the real test split, recorded when the judge was trained."""
        return float(self.meta["test_accuracy"])

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.meta["class_names"])

    @property
    def key(self) -> str:
        return str(self.meta["key"])

    def features(self, images: np.ndarray) -> np.ndarray:
        """Penultimate features float32 [N, 128] of uint8 images [N, C, H, W]."""
        return extract_features(self.model, images)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities float32 [N, K] of uint8 images [N, C, H, W]."""
        logits = torch.from_numpy(predict_logits(self.model, images))
        return torch.softmax(logits, dim=1).numpy()

    def describe(self) -> dict[str, Any]:
        """Short identity for metric rows: key, path, real test accuracy, recipe."""
        return {"key": self.key, "path": self.path, "test_accuracy": self.test_accuracy, "recipe": self.meta["recipe"]}


def data_digest(train: ImageData, test: ImageData) -> str:
    """sha256 over the pixels, labels and class names of both splits."""
    h = hashlib.sha256()
    for part in (train, test):
        h.update(repr((part.images.shape, part.class_names)).encode())
        h.update(np.ascontiguousarray(part.images).tobytes())
        h.update(np.ascontiguousarray(part.labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def _recipe(cfg: JudgeConfig) -> dict[str, Any]:
    """The fields that change the trained weights (the cache folder is not one of them)."""
    out = to_dict(cfg)
    out.pop("cache_dir")
    return out


def real_splits(data_cfg: DataConfig) -> tuple[ImageData, ImageData]:
    """The whole real train and test splits of ``data_cfg`` (its ``max_images`` / ``class_counts`` are ignored)."""
    full = whole_split(data_cfg)
    return load_images(full, "train"), load_images(full, "test")


def load_or_train_judge(
    data_cfg: DataConfig,
    cache_dir: str | None = None,
    *,
    judge_cfg: JudgeConfig | None = None,
    real: tuple[ImageData, ImageData] | None = None,
    progress: bool = True,
) -> Judge:
    """Return the cached judge for this data set and recipe, training (and caching) it if needed.

    Args:
        data_cfg: the real data; the judge always learns from the whole training split
            (``data_cfg.max_images`` / ``class_counts`` are ignored) unless ``judge_cfg.max_train_images`` > 0.
        cache_dir: cache root; None = ``judge_cfg.cache_dir`` or :func:`default_cache_dir`.
        judge_cfg: training recipe; None = ``JudgeConfig()``.
        real: preloaded (train, test) splits, to avoid loading them twice.
        progress: print training progress to stderr.

    Returns:
        The judge, with its real test accuracy in ``judge.test_accuracy``.

    Raises:
        ConfigError / DataError: the real data cannot be loaded.
    """
    judge_cfg = judge_cfg or JudgeConfig()
    cache_dir = cache_dir or judge_cfg.cache_dir or default_cache_dir()
    train, test = real if real is not None else real_splits(data_cfg)
    digest = data_digest(train, test)
    recipe = _recipe(judge_cfg)
    key = hashlib.sha256(
        json.dumps({"data": digest, "recipe": recipe, "arch": ARCH_VERSION}, sort_keys=True).encode()
    ).hexdigest()[:16]
    folder = os.path.join(os.path.expanduser(cache_dir), f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', train.name)}-{key}")
    judge = _load(folder, key)
    if judge is not None:
        judge.real = (train, test)
        return judge

    model, meta = _train_judge(
        data_cfg, judge_cfg, train, test, key=key, recipe=recipe, digest=digest, folder=folder, progress=progress
    )
    _save(folder, model, meta)
    if progress:
        log.info("judge real test accuracy %.4f (%.0fs)", meta["test_accuracy"], meta["train_seconds"])
    return Judge(model=model, meta=meta, path=folder, real=(train, test))


def _train_judge(
    data_cfg: DataConfig,
    judge_cfg: JudgeConfig,
    train: ImageData,
    test: ImageData,
    *,
    key: str,
    recipe: dict[str, Any],
    digest: str,
    folder: str,
    progress: bool,
) -> tuple[SmallCNN, dict[str, Any]]:
    """Train a judge on ``train`` (a stratified ``judge_cfg.max_train_images`` subset when set) and test it.

    Returns:
        (the model, its ``judge.json`` metadata as JSON reads it back).
    """
    if judge_cfg.max_train_images > 0 and judge_cfg.max_train_images < len(train):
        keep = stratified_subset(train.labels, judge_cfg.max_train_images, judge_cfg.seed)
        images, labels = train.images[keep], train.labels[keep]
    else:
        images, labels = train.images, train.labels
    if progress:
        log.info(
            "training the judge on %d real images (%d epochs); cached in %s", len(images), judge_cfg.epochs, folder
        )
    start = time.time()
    model = train_classifier(images, labels, train.num_classes, **judge_cfg.fit_kwargs(), progress=progress)
    meta = {
        "key": key,
        "arch_version": ARCH_VERSION,
        "arch": model.arch,
        "recipe": recipe,
        "data": {
            "source": train.name,
            "digest": digest,
            "num_train": int(len(images)),
            "num_test": int(len(test)),
            "config": to_dict(whole_split(data_cfg)),
        },
        "class_names": list(train.class_names),
        "test_accuracy": accuracy(model, test.images, test.labels),
        "train_seconds": round(time.time() - start, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # as judge.json holds it (a tuple such as data.class_counts reads back a list)
    return model, json.loads(json.dumps(meta))


def _save(folder: str, model: SmallCNN, meta: dict[str, Any]) -> None:
    """Weights first, metadata last: judge.json's presence marks a complete cache entry."""
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{WEIGHTS_FILE}.tmp-{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, os.path.join(folder, WEIGHTS_FILE))
    atomic_write_text(os.path.join(folder, META_FILE), json.dumps(meta, indent=2) + "\n")


def _load(folder: str, key: str) -> Judge | None:
    """Load a complete cache entry, or None (missing, or unreadable: it is then retrained and replaced)."""
    meta_path, weights_path = os.path.join(folder, META_FILE), os.path.join(folder, WEIGHTS_FILE)
    if not (os.path.isfile(meta_path) and os.path.isfile(weights_path)):
        return None
    try:
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
        if meta.get("key") != key:
            raise ValueError(f"key {meta.get('key')!r} != {key!r}")
        model = SmallCNN.from_arch(meta["arch"])
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    except Exception as exc:  # a damaged cache is not the user's input: rebuild it
        log.warning("judge cache %s is unreadable (%s); retraining it", folder, exc)
        return None
    return Judge(model=model.eval(), meta=meta, path=folder)
