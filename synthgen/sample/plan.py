"""The shard plan: which sample ids go in which shard, and exactly how many of each class.

A ``SamplePlan`` holds everything that decides the dataset's bytes and layout (checkpoint digest,
seed, N, exact class counts, truncation, format, shard size, ...). Its ``digest()`` is written to
``OUT/plan.json`` before the first shard and into every shard's metadata, so a re-run can tell
"same dataset, finish it" from "different dataset, refuse" without trusting file names.

Shard k holds sample_ids ``[k * images_per_shard, min((k + 1) * images_per_shard, N))`` in order.
A plan sampled ``--around`` real images also holds the real set's digest and class sizes, sigma and the
inversion settings (``synthgen.sample.around`` maps its sample ids to (real image, variation)).
A plan with ``--code NAME=VALUE`` holds those InfoGAN code values (``codes``), fixed for every sample.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from synthgen.errors import ConfigError
from synthgen.judge.config import FilterSpec
from synthgen.sample.config import SampleConfig, parse_code_values
from synthgen.shards.layout import Shard, safe_label_dirs

PLAN_VERSION = 1
AROUND_KEYS = ("around", "around_class_images", "sigma", "inversion", "inversion_chunk")
TRANSLATE_KEYS = ("translate", "per_image", "variation")
UPSCALE_KEYS = ("upscale", "generated_shape")


@dataclass(frozen=True)
class AroundSpec:
    """What ``--around`` adds to a plan (built by ``synthgen.sample.around.around_spec``)."""

    digest: str  # sha256 of the real set's images and labels
    class_images: tuple[int, ...]  # real images per label index
    class_counts: tuple[int, ...]  # exact samples per label index (sum = num_samples)
    inversion: dict[str, Any]  # resolved inversion settings (enter the plan digest)


@dataclass(frozen=True)
class TranslateSpec:
    """What ``--translate`` adds to a plan (built by ``synthgen.sample.translate.translate_spec``)."""

    digest: str  # sha256 of the input images and labels
    class_images: tuple[int, ...]  # input images per label index
    per_image: int  # variations of every input image
    variation: str  # synthgen.translation.VARIATION_KINDS


@dataclass(frozen=True)
class SamplePlan:
    checkpoint_digest: str  # sha256 of the checkpoint's model.pt
    seed: int  # dataset seed
    num_samples: int  # N
    class_names: tuple[str, ...]  # label index -> name (the checkpoint's order)
    label_dirs: tuple[str, ...]  # label index -> filesystem-safe folder name under png/
    class_counts: tuple[int, ...]  # exact samples per label index (sums to N)
    image_shape: tuple[int, int, int]  # (C, H, W)
    z_dim: int  # generator latent size
    truncation: float  # psi; 1.0 = off
    use_ema: bool  # EMA generator weights
    format: str  # parquet | png | both
    images_per_shard: int  # rows per shard
    chunk_size: int  # canonical forward batch (CPU byte-determinism)
    row_group_size: int  # parquet rows per row group
    png_compress_level: int  # zlib level of every PNG
    filter: FilterSpec | None = None  # the judge filter (written as its canonical text, e.g. "judge:0.9"); None = off
    filter_judge: str = ""  # cache key of the judge that filters (its weights decide which images pass)
    filter_max_candidates: int = 0  # latents tried per image when filtering (0 when unfiltered)
    around: str = ""  # --around: sha256 of the real set (images and labels); "" = prior draws
    around_class_images: tuple[int, ...] = ()  # --around: real images per label index
    sigma: float = 0.0  # --around: latent noise scale of the variations
    inversion: dict[str, Any] = field(default_factory=dict)  # --around: steps, lr, restarts, prior_weight, encoder ...
    inversion_chunk: int = 0  # --around: real images per inversion call / OUT/inversion file
    codes: dict[str, float] = field(default_factory=dict)  # --code: InfoGAN code name -> value fixed for every sample
    translate: str = ""  # --translate: sha256 of the input images and labels; "" = not a translation
    per_image: int = 0  # --translate: variations of every input image (sample id i * per_image + j)
    variation: str = ""  # --translate: how variations differ (synthgen.translation.VARIATION_KINDS)
    upscale: str = ""  # --upscale: sha256 of the upscaler's model.pt; "" = images as the generator makes them
    generated_shape: tuple[int, ...] = ()  # --upscale: (C, H, W) the generator makes, before upscaling

    @property
    def provenance(self) -> bool:
        """Whether every row names the real / input image it came from (source_id, source)."""
        return bool(self.around or self.translate)

    @property
    def num_shards(self) -> int:
        return -(-self.num_samples // self.images_per_shard)

    def shard(self, index: int) -> Shard:
        """Shard ``index`` (0 <= index < num_shards)."""
        start = index * self.images_per_shard
        return Shard(index=index, start=start, end=min(start + self.images_per_shard, self.num_samples))

    def shards(self) -> list[Shard]:
        return [self.shard(k) for k in range(self.num_shards)]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["filter"] = self.filter.to_text() if self.filter else ""
        if not self.filter:  # unfiltered plans keep the digest they had before filtering existed
            for key in ("filter", "filter_judge", "filter_max_candidates"):
                data.pop(key)
        if not self.around:  # prior plans keep the digest they had before --around existed
            for key in AROUND_KEYS:
                data.pop(key)
        if not self.codes:  # plans without --code keep the digest they had before codes existed
            data.pop("codes")
        if not self.translate:  # plans without --translate keep the digest they had before it existed
            for key in TRANSLATE_KEYS:
                data.pop(key)
        if not self.upscale:  # plans without --upscale keep the digest they had before it existed
            for key in UPSCALE_KEYS:
                data.pop(key)
        data["plan_version"] = PLAN_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplePlan:
        data = {k: v for k, v in data.items() if k != "plan_version"}
        data["filter"] = FilterSpec.from_text(data.get("filter", ""))
        for key in (
            "class_names",
            "label_dirs",
            "class_counts",
            "image_shape",
            "around_class_images",
            "generated_shape",
        ):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def digest(self) -> str:
        """sha256 of the plan's canonical JSON: equal digests mean byte-identical datasets."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def differences(self, other: SamplePlan) -> list[str]:
        """Human-readable ``key: old -> new`` lines for fields that differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {theirs.get(k)!r} -> {mine.get(k)!r}" for k in mine if mine.get(k) != theirs.get(k)]


def split_batches(shard: Shard, batch_size: int) -> list[tuple[int, int]]:
    """Cut a shard's id range at absolute multiples of ``batch_size`` into [start, end) batches."""
    cuts = [shard.start]
    nxt = (shard.start // batch_size + 1) * batch_size
    while nxt < shard.end:
        cuts.append(nxt)
        nxt += batch_size
    cuts.append(shard.end)
    return list(zip(cuts[:-1], cuts[1:]))


def allocate_counts(total: int, weights: Sequence[float]) -> list[int]:
    """Exact per-class counts for ``total`` samples by largest-remainder rounding.

    Each class gets floor(total * w / sum(w)); the leftover samples go to the largest fractional
    remainders (ties: lower class index), so counts sum to ``total`` and are deterministic.

    Raises:
        ConfigError: a negative weight or all weights zero.
    """
    if any(w < 0 for w in weights):
        raise ConfigError(f"class weights must be >= 0, got {list(weights)}")
    weight_sum = float(sum(weights))
    if weight_sum <= 0:
        raise ConfigError("every selected class has weight 0: give at least one class a positive weight")
    quotas = [total * w / weight_sum for w in weights]
    counts = [int(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda c: (-(quotas[c] - counts[c]), c))
    for c in order[: total - sum(counts)]:
        counts[c] += 1
    return counts


def class_index(token: str, class_names: Sequence[str]) -> int:
    """Index of a class given by name (case-insensitive) or by index.

    Raises:
        ConfigError: unknown name or index out of range; the message lists the valid names.
    """
    token = token.strip()
    if token.lstrip("-").isdigit():
        index = int(token)
        if not 0 <= index < len(class_names):
            raise ConfigError(f"class index {index} is out of range 0..{len(class_names) - 1}")
        return index
    lowered = {name.lower(): i for i, name in enumerate(class_names)}
    if token.lower() not in lowered:
        raise ConfigError(f"unknown class {token!r}; valid names are {list(class_names)} (or indices)")
    return lowered[token.lower()]


def resolve_classes(spec: str, class_names: Sequence[str]) -> list[int]:
    """Class indices selected by ``--classes`` ("all" or a comma list of names or indices).

    Raises:
        ConfigError: an unknown name or an index out of range (the message lists the valid names).
    """
    if spec.strip().lower() == "all":
        return list(range(len(class_names)))
    chosen: list[int] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        index = class_index(token, class_names)
        if index not in chosen:
            chosen.append(index)
    if not chosen:
        raise ConfigError(f"classes={spec!r} selects nothing; pass 'all' or e.g. '0,3' or '{class_names[0]}'")
    return sorted(chosen)


def _weights_from_file(path: str, class_names: Sequence[str]) -> list[float]:
    if not os.path.isfile(path):
        raise ConfigError(
            f"class_weights={path!r} is neither 'uniform', 'data' nor an existing YAML/JSON file "
            "of {class name: weight}"
        )
    with open(path, encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh)  # JSON is YAML too
        except yaml.YAMLError as exc:
            raise ConfigError(f"class weights file {path!r} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"class weights file {path!r} must hold a non-empty mapping {{class name: weight}}")
    weights = [0.0] * len(class_names)  # classes the file does not name get weight 0
    for key, value in data.items():
        index = class_index(str(key), class_names)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"class weights file {path!r}: weight of {key!r} must be a number >= 0, got {value!r}")
        weights[index] = float(value)
    return weights


def _weights_from_data(train_config: Any, num_classes: int) -> list[float]:
    import numpy as np

    from synthgen.data import load_images

    data = load_images(train_config.data, "train")  # the exact (sub)set the generator was trained on
    counts = np.bincount(data.labels, minlength=num_classes)
    return [float(c) for c in counts[:num_classes]]


def resolve_class_weights(spec: str, class_names: Sequence[str], train_config: Any = None) -> list[float]:
    """Per-class weights from ``uniform``, ``data`` or a YAML/JSON file.

    Args:
        spec: ``uniform`` | ``data`` | path to a file mapping class name (or index) -> weight.
        class_names: the checkpoint's class names.
        train_config: the checkpoint's ExperimentConfig (needed for ``data``).

    Raises:
        ConfigError: unknown spec, bad file, unknown class in the file.
        DataError: ``data`` and the training images cannot be read.
    """
    if spec in ("uniform", "auto"):  # auto: uniform for prior draws (--around resolves it to the real set)
        return [1.0] * len(class_names)
    if spec == "data":
        if train_config is None:
            raise ConfigError("class_weights=data needs the checkpoint's training config")
        return _weights_from_data(train_config, len(class_names))
    return _weights_from_file(spec, class_names)


def make_plan(
    cfg: SampleConfig,
    checkpoint_digest: str,
    class_names: Sequence[str],
    image_shape: Sequence[int],
    z_dim: int,
    train_config: Any = None,
    judge_key: str = "",
    around: AroundSpec | None = None,
    translate: TranslateSpec | None = None,
    upscale: tuple[str, tuple[int, int, int]] | None = None,
) -> SamplePlan:
    """Resolve classes and weights into exact counts and build the plan.

    ``judge_key`` is the cache key of the filtering judge (needed when ``cfg.filter`` is set); ``around``
    the real set and its exact per-class counts (needed when ``cfg.around`` is set); ``upscale`` the upscaler's
    (digest, output shape) with ``cfg.upscale`` (``image_shape`` stays what the generator makes).

    Raises:
        ConfigError: bad classes / class_weights, or a selected class set whose weights are all 0.
    """
    if cfg.around and around is None:
        raise ConfigError(f"around={cfg.around!r} needs its real set: load it first (synthgen.sample.run does)")
    if around is not None:
        counts = list(around.class_counts)
    elif translate is not None:
        counts = [translate.per_image * n for n in translate.class_images]
    else:
        selected = set(resolve_classes(cfg.classes, class_names))
        weights = resolve_class_weights(cfg.class_weights, class_names, train_config)
        weights = [w if c in selected else 0.0 for c, w in enumerate(weights)]
        counts = allocate_counts(cfg.prior_num_samples, weights)
    generated_shape = tuple(int(s) for s in image_shape)
    c, h, w = upscale[1] if upscale else generated_shape
    codes = resolve_fixed_codes(cfg.codes, train_config)
    spec = cfg.filter
    if spec and not judge_key:
        raise ConfigError(f"filter={spec} needs a judge: load it first (synthgen.sample.run does)")
    return SamplePlan(
        checkpoint_digest=checkpoint_digest,
        seed=cfg.seed,
        num_samples=int(sum(counts)),
        class_names=tuple(class_names),
        label_dirs=safe_label_dirs(class_names),
        class_counts=tuple(counts),
        image_shape=(c, h, w),
        z_dim=int(z_dim),
        truncation=cfg.truncation,
        use_ema=cfg.use_ema,
        format=cfg.format,
        images_per_shard=cfg.images_per_shard,
        chunk_size=cfg.chunk_size,
        row_group_size=cfg.row_group_size,
        png_compress_level=cfg.png_compress_level,
        filter=spec,
        filter_judge=judge_key if spec else "",
        filter_max_candidates=cfg.filter_max_candidates if spec else 0,
        around=around.digest if around else "",
        around_class_images=around.class_images if around else (),
        sigma=cfg.sigma if around else 0.0,
        inversion=dict(around.inversion) if around else {},
        inversion_chunk=cfg.inversion_chunk if around else 0,
        codes=codes,
        translate=translate.digest if translate else "",
        per_image=translate.per_image if translate else 0,
        variation=translate.variation if translate else "",
        upscale=upscale[0] if upscale else "",
        generated_shape=generated_shape if upscale else (),
    )


def resolve_fixed_codes(texts: Sequence[str], train_config: Any) -> dict[str, float]:
    """``--code NAME=VALUE`` values checked against the checkpoint's ``model.codes``, in the model's code order.

    Args:
        texts: the ``codes`` of the SampleConfig.
        train_config: the checkpoint's ExperimentConfig (None only when ``texts`` is empty).

    Raises:
        ConfigError: an unknown code name (the model's are listed) or a value outside the code's range.
    """
    wanted = parse_code_values(texts)
    if not wanted:
        return {}
    model_codes = tuple(train_config.model.codes) if train_config is not None else ()
    by_name = {c.name: c for c in model_codes}
    for name in wanted:
        if name not in by_name:
            raise ConfigError(
                f"--code {name}=...: the checkpoint's generator has no code {name!r}; its codes are "
                f"{list(by_name) or 'none (train with model.codes to get some)'}"
            )
    from synthgen.models.codes import check_code_value

    for name, value in wanted.items():
        check_code_value(by_name[name], value)
    return {c.name: wanted[c.name] for c in model_codes if c.name in wanted}
