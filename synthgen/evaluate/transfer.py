"""Transfer: is a translator's A -> B worth B's labels? (the "transfer" metric of a pix2pix / cyclegan checkpoint)

A classifier (``synthgen.classify``, one SmallCNN recipe, the same steps for every arm) is tested on B's real test
split after training on, per seed s:

    source_only             A's images as the translator takes them (gray replicated to B's channels; a pix2pix
                            on data.pairs=edges: their outlines), A's labels
    source_generic_aug      A's images through a generic augmentation that does not know how B was made
    translated              A's images translated into B (``synthgen.translation.translate_rows``), A's labels
    oracle                  B's own images and labels (``num_oracle``): the ceiling
    few_b                   ``label_fraction`` of the oracle's count of B labels alone
    few_b_plus_translated   those few B labels + the translated A (``synthetic_fraction`` of every batch)
    few_b_plus_generic      those few B labels + the generic augmentation pool (the same share)
    translated_plus_generic the translated A + the generic augmentation pool (``synthetic_fraction`` of every batch
                            from the pool): does the translation add anything to what generic augmentation gives?
    translated_generic_aug  the translated A through the same generic augmentation (``generic_copies`` copies of
                            each translation): the colour variety a one-to-one translator cannot draw, added to it

``transfer.arms`` picks a subset (default: all), e.g. one new arm measured against stored results of the others.

Halves: A's images come from the item indices the translator's B images do not (``index_half`` opposite to B's),
so no A image translated here is an item whose B image the translator saw; B's labelled images come from B's own
half. Both are class-stratified subsets picked by ``subset_seed = s`` (exactly ``load_images``' subset). The
generic pool holds ``generic_copies`` augmented copies of each A image, each seeded by (s, its item index, copy):
the item is tinted by a random colour, its dark pixels take a random background colour, then ColorJitter and
Gaussian noise (torchvision.transforms.v2). The summaries over the seeds (and the issue's targets) are made by the
metric's module, ``synthgen.evaluate.metrics.transfer``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from synthgen.config import to_dict
from synthgen.data import ImageData, whole_split
from synthgen.errors import ConfigError
from synthgen.evaluate.context import EvalContext, MetricOutput
from synthgen.evaluate.generic_augment import generic_augment, to_channels
from synthgen.evaluate.transfer_data import (
    SeedSets,
    TransferData,
    few_count,
    halves,
    load_transfer_data,
    seed_sets,
)

log = logging.getLogger("synthgen")

# arm -> (the set it trains on, the set mixed into every batch at synthetic_fraction or ""): _SeedTrainingSets' names
ARM_PARTS = {
    "source_only": ("source", ""),
    "source_generic_aug": ("generic", ""),
    "translated": ("translated", ""),
    "oracle": ("oracle", ""),
    "few_b": ("few", ""),
    "few_b_plus_translated": ("few", "translated"),
    "few_b_plus_generic": ("few", "generic"),
    "translated_plus_generic": ("translated", "generic"),
    "translated_generic_aug": ("translated_generic", ""),
}
ARMS = tuple(ARM_PARTS)  # in the order they run and are reported


def is_translation_checkpoint(path: str) -> bool:
    """Whether the checkpoint at ``path`` holds an image -> image model (pix2pix, cyclegan, pixelda).

    Raises:
        CheckpointError: nothing loadable at ``path``.
    """
    from synthgen.checkpoint import load_payload
    from synthgen.models import get_model_spec

    return bool(get_model_spec(load_payload(path)["config"]["model"]["name"]).translation)


def open_translator(cfg: Any, G: Any, info: Any) -> Any:
    """A translation checkpoint (``load_translator``'s ``G, info``) as the evaluation's Source: B's data, the run's
    identity, no noise generator.

    Raises:
        ConfigError: see ``halves``.
    """
    from synthgen.evaluate.sources import translator_source

    h = halves(info.config)
    return translator_source(cfg, G, info, whole_split(h.b), "translator", variation=info.variation)


def transfer_data(ctx: EvalContext, config: Any) -> TransferData:
    """The study's data for the translator run ``config``, loaded once per evaluation (kept in ``ctx``)."""
    return ctx._cached("transfer_data", lambda: load_transfer_data(halves(config), ctx.real_train, ctx.real_test))


def check_transfer_possible(ctx: EvalContext) -> None:
    """Fail before any work: a source that is no translator, halves that cannot be kept apart, sizes that do not
    fit a half, classes that do not pair up, a translator that does not make B's images.

    Raises:
        ConfigError: naming the problem and the fix.
    """
    source = ctx.source
    if not source.identity.get("translation"):
        raise ConfigError(
            "transfer measures a translation checkpoint (pix2pix, cyclegan, pixelda): pass --checkpoint of such a run; "
            f"{source.path!r} draws images from noise (use the other metrics)"
        )
    data = transfer_data(ctx, source.experiment)
    if tuple(source.image_shape) != data.test.image_shape:
        raise ConfigError(
            f"the translator makes {tuple(source.image_shape)} images but B's test split holds {data.test.image_shape}"
        )
    for seed in ctx.cfg.transfer.seeds:
        seed_sets(data, ctx.cfg.transfer, seed)


def translator_view(info: Any, source: ImageData) -> ImageData:
    """A's images as the translator takes them [N, C_in, H, W] (a pix2pix on edges: their outlines), A's labels.

    Raises:
        ConfigError: A's images do not have the shape the translator was trained on.
    """
    from synthgen.translation import translator_inputs

    inputs = translator_inputs(source.images, info)  # [N, C_in, H, W]
    if tuple(inputs.shape[1:]) != tuple(info.input_shape):
        raise ConfigError(f"A's images are {tuple(inputs.shape[1:])} but the translator takes {info.input_shape}")
    return ImageData("a", inputs, source.labels, source.class_names)


def translate(G: Any, info: Any, as_is: ImageData, seed: int, t: Any) -> ImageData:
    """``as_is`` (``translator_view``) translated into B: images [N, C_out, H, W], A's labels."""
    from synthgen.translation import translate_rows

    out = translate_rows(
        G,
        as_is.images,
        as_is.labels,
        0,
        len(as_is),
        per_image=1,
        seed=seed,
        variation=info.variation,
        chunk_size=t.chunk_size,
    )  # [N, C_out, H, W]
    return ImageData("translated", out, as_is.labels, as_is.class_names)


@dataclass
class _SeedTrainingSets:
    """One seed's training sets, each built on first use and kept for the seed's other arms: a subset of arms
    (``transfer.arms``) costs only what its arms need (no translation for the oracle alone)."""

    G: Any  # the translator
    info: Any  # its TranslatorInfo
    sets: SeedSets
    seed: int
    t: Any  # the TransferConfig
    names: tuple[str, ...]  # B's class names
    channels: int  # B's channels

    @property
    def oracle(self) -> ImageData:
        return self.sets.oracle

    @property
    def few(self) -> ImageData:
        return self.sets.few

    @cached_property
    def as_is(self) -> ImageData:
        return translator_view(self.info, self.sets.source)

    @cached_property
    def source(self) -> ImageData:
        return ImageData("a", to_channels(self.as_is.images, self.channels), self.as_is.labels, self.names)

    @cached_property
    def translated(self) -> ImageData:
        return translate(self.G, self.info, self.as_is, self.seed, self.t)

    def _generic_pool(self, data: ImageData, name: str) -> ImageData:
        """``generic_copies`` generic augmentations of each of ``data``'s images (A's items, in their order)."""
        t = self.t
        pool = generic_augment(data.images, self.sets.source_keys, self.seed, t, self.channels)  # [N * copies, C, H, W]
        return ImageData(name, pool, np.repeat(data.labels, t.generic_copies), self.names)

    @cached_property
    def generic(self) -> ImageData:
        return self._generic_pool(self.as_is, "generic")

    @cached_property
    def translated_generic(self) -> ImageData:
        return self._generic_pool(self.translated, "translated_generic")


def selected_arms(t: Any) -> tuple[str, ...]:
    """The arms ``transfer.arms`` asks for, in ARMS' order (``()`` = all of them)."""
    return tuple(arm for arm in ARMS if not t.arms or arm in t.arms)


def _keys_digest(keys: np.ndarray) -> str:
    return hashlib.sha256(np.sort(keys).astype("<i8").tobytes()).hexdigest()[:16]


def transfer(ctx: EvalContext) -> MetricOutput:
    """Every arm of the module docstring over ``transfer.seeds``: each arm's test accuracy per seed, overall and per
    class, and what the halves were (the "transfer" metric adds the summaries over seeds).

    Raises:
        ConfigError: not a translation checkpoint; see ``halves`` and ``seed_sets``; shapes that do not fit.
    """
    from synthgen.classify import ClassifierSettings, train_and_score

    cfg, t = ctx.cfg, ctx.cfg.transfer
    check_transfer_possible(ctx)
    G, info = ctx.source.translator  # loaded by open_translator
    data = transfer_data(ctx, info.config)
    names, channels = tuple(data.test.class_names), data.test.image_shape[0]
    arms = selected_arms(t)
    acc: dict[str, list[float]] = {arm: [] for arm in arms}
    per_class: dict[str, list[dict]] = {arm: [] for arm in arms}
    parity, overlap, digests = [], [], []
    for seed in t.seeds:
        sets = seed_sets(data, t, seed)
        built = _SeedTrainingSets(G, info, sets, seed, t, names, channels)
        settings = ClassifierSettings(
            steps=t.steps,
            batch_size=t.batch_size,
            lr=t.lr,
            width=cfg.judge.width,
            augment=t.augment,
            synthetic_fraction=t.synthetic_fraction,
            seed=seed,
            num_threads=t.num_threads,
        )
        for arm in arms:
            first, second = (getattr(built, part) if part else None for part in ARM_PARTS[arm])
            result = train_and_score(
                first, second, data.test, settings, progress=ctx.progress, desc=f"transfer {arm} seed {seed}"
            )
            acc[arm].append(result.score.accuracy)
            per_class[arm].append(result.score.per_class)
        log.info("transfer seed %d: %s", seed, ", ".join(f"{arm} {acc[arm][-1]:.4f}" for arm in arms))
        keys = sets.source_keys
        parity.append({"even": int((keys % 2 == 0).sum()), "odd": int((keys % 2 == 1).sum())})
        overlap.append(int(len(np.intersect1d(keys, data.translator_b_keys()))))
        digests.append(_keys_digest(keys))
    results = {
        "seeds": list(t.seeds),
        "choosing_seeds": list(t.choosing_seeds),
        "accuracy": acc,  # arm -> test accuracy per seed (summarised by synthgen.evaluate.metrics.transfer)
        "per_class": per_class,  # arm -> per seed: class name -> test accuracy
        "class_map": dict(zip(data.a_all.class_names, names)),
        "halves": {
            "source": data.halves.a.index_half,
            "translator_b": data.halves.b.index_half,
            "source_parity": parity,
            "overlap_with_translator_b": overlap,
            "source_keys_sha256": digests,
        },
        "translator": {"model": info.config.model.name, "variation": info.variation, "step": info.step},
    }
    n_few = few_count(t, len(names))
    return MetricOutput(
        results=results,
        settings=to_dict(t) | {"classifier_width": cfg.judge.width, "source_data": to_dict(data.halves.a)},
        counts={
            "source": t.num_source,
            "generic_pool": t.num_source * t.generic_copies,
            "oracle": t.num_oracle,
            "few_b": n_few,
            "b_test": len(data.test),
        },
    )
