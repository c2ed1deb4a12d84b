"""``synthgen sample --translate DATA``: the input images a translation checkpoint turns into a labelled dataset.

DATA is one of (checked against the checkpoint before anything is written):

* ``train`` / ``test``: that split of the checkpoint's own domain A data (its ``data:`` config, subset included
  for train);
* a data-config YAML: DataConfig keys (flat, or under ``data:``) plus an optional ``split`` (train or test);
  resolution / channels default to the checkpoint's input domain;
* a synthgen dataset folder (it holds ``manifest.json``): every row, in sample id order;
* any other folder: an ImageFolder root (one subfolder per class), read at the checkpoint's input size.

Input image ``i`` (its ``source_id``) keeps its label; its ``source`` names it (a file's path relative to the
root, ``"<split>:<index>"`` for the IDX sources, ``"sample:<sample_id>"`` for a synthgen dataset). Sample id
``i * K + j`` is variation ``j`` of image ``i`` (``synthgen.translation``).

Refused with a ConfigError: images whose channels or size differ from what the checkpoint takes (an ImageFolder
is checked on its files as they are, before any conversion), and, for a class-conditional generator, classes
other than the checkpoint's.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from synthgen.config import DataConfig
from synthgen.data import SPLITS
from synthgen.errors import ConfigError
from synthgen.log import get_logger
from synthgen.sample.plan import TranslateSpec
from synthgen.sample.realset import RealSet, _digest, data_config_file, named_set  # noqa: PLC2701 (one home)
from synthgen.translation import TranslatorInfo, check_per_image


def load_translate_input(spec: str, info: TranslatorInfo) -> RealSet:
    """Load and check the images of ``--translate spec`` for the translator ``info``.

    Returns:
        The input images (source shape: what one gives --translate), labels, class names, source strings.

    Raises:
        ConfigError: unreadable spec, a wrong image shape, other classes for a class-conditional generator.
        DataError: the images cannot be read.
    """
    if os.path.isdir(spec) and os.path.isfile(os.path.join(spec, "manifest.json")):
        data = _from_shards(spec)
    else:
        cfg, split = _data_config(spec, info)
        if cfg.source == "imagefolder":
            _check_folder_files(cfg, split, info)
        data = named_set(spec, cfg, split)
    if data.images.shape[1:] != info.source_shape:
        raise ConfigError(
            f"--translate {spec}: images are {list(data.images.shape[1:])} (C, H, W) but the checkpoint translates "
            f"{list(info.source_shape)}; give images of that shape (a data-config YAML can set resolution and "
            "channels to convert them)"
        )
    if info.conditional and tuple(data.class_names) != tuple(info.class_names):
        raise ConfigError(
            f"--translate {spec}: the classes {list(data.class_names)} differ from the class-conditional "
            f"checkpoint's {list(info.class_names)}; use data with the same classes in the same order"
        )
    if data.describe["split"] == "test":
        get_logger().warning(
            "--translate %s: translating a test split; do not train on these rows a classifier you then test on "
            "that split's images",
            spec,
        )
    return data


def translate_spec(cfg: Any, data: RealSet, info: TranslatorInfo) -> TranslateSpec:
    """The plan's ``--translate`` part.

    Raises:
        ConfigError: K > 1 variations of a deterministic translator.
    """
    check_per_image(cfg.variations, info.variation)
    if cfg.num_samples and cfg.num_samples != cfg.variations * len(data):
        raise ConfigError(
            f"num_samples={cfg.num_samples} but --translate makes per_image={cfg.variations} x {len(data)} input "
            "images; drop --num-samples (or set num_samples=0), or change --per-image"
        )
    return TranslateSpec(data.digest, data.class_images(), cfg.variations, info.variation)


def _data_config(spec: str, info: TranslatorInfo) -> tuple[DataConfig, str]:
    """The DataConfig and split of a non-dataset spec (train / test, a YAML, or an ImageFolder root)."""
    c, h, _ = info.source_shape
    if spec in SPLITS:  # an upscaler's own split: its images at the low resolution it takes
        return dataclasses.replace(info.config.data, resolution=h), spec
    if os.path.isdir(spec):  # an ImageFolder root at the checkpoint's input size
        return DataConfig(source="imagefolder", root=spec, resolution=h, channels=c), "train"
    cfg, split = data_config_file(spec, c, h, "--translate")
    if split not in SPLITS:
        raise ConfigError(f"--translate {spec}: split={split!r} is invalid: must be one of {list(SPLITS)}")
    return cfg, split


def _check_folder_files(cfg: DataConfig, split: str, info: TranslatorInfo) -> None:
    """Refuse an ImageFolder whose files (as they are, before the loader converts them) have other channels or a
    size other than the checkpoint's input, unless a data-config YAML asked for the conversion explicitly."""
    from PIL import Image

    from synthgen.data.imagefolder import listed_files

    files = listed_files(cfg.root, split)
    c, h, w = info.source_shape
    for path in files[:: max(1, len(files) // 16)][:16]:  # a sample of files across the classes
        with Image.open(path) as img:
            channels = len(img.getbands()) - (1 if img.mode in ("RGBA", "LA") else 0)
            if channels != c or img.size != (w, h):
                raise ConfigError(
                    f"--translate: {path} is {img.size[0]}x{img.size[1]} with {channels} channel(s) but the "
                    f"checkpoint translates {w}x{h} images with {c}; give images of that kind, or a data-config "
                    f"YAML (source: imagefolder, root: ..., resolution: {h}, channels: {c}) to convert them"
                )


def _from_shards(root: str) -> RealSet:
    from synthgen.data.shard_dataset import load_shard_arrays

    data = load_shard_arrays(root)  # rows in sample id order: ids 0..N-1 (synthgen verify checks it)
    sources = tuple(f"sample:{k}" for k in range(len(data.labels)))
    describe = {
        "kind": "synthgen",
        "spec": root,
        "split": "train",
        "size": int(len(data.labels)),
        "digest": _digest(data.images, data.labels),
    }
    return RealSet(data.images, data.labels, tuple(data.class_names), sources, describe)
