"""Running a trained image -> image model (pix2pix, cyclegan, srgan): the one home of how inputs become outputs.

``synthgen sample --translate`` (the fleet's actors) and ``synthgen evaluate --metrics transfer`` both call
:func:`translate_rows`, so a sampled dataset and the metric see the same translations.

Sample ids of a translated dataset list the input images in order, each followed by its variations: id
``i * K + j`` is variation ``j < K`` of input image ``i``. How variations differ (``variation_kind``):

* ``dropout`` (pix2pix): the U-Net's decoder dropout stays on, as in the pix2pix paper's test time. Masks are
  drawn per canonical chunk (``chunk_size`` ids aligned to sample ids), seeded by (seed, chunk start), so a row
  depends on its id only, never on the actor or batch it was made in;
* ``edges+dropout`` (pix2pix on ``data.pairs: edges``): as above, and variation ``j >= 1`` first deforms the
  outline elastically (``synthgen.data.pairs.elastic_rows``, keyed by (seed, i, j)): one outline renders K shapes;
* ``noise`` (pixelda): a new noise vector per sample id, drawn from torch's generator seeded per canonical chunk as
  for the dropout masks (the generator declares ``draws_noise``);
* ``none`` (cyclegan, srgan): a deterministic map, one output per input (K must be 1).

An upscaler (srgan, on ``data.pairs: downsample``) takes images ``factor`` times smaller than the ones it makes:
its input and source shapes are the low-resolution ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthgen.errors import CheckpointError, ConfigError

VARIATION_KINDS = ("dropout", "edges+dropout", "noise", "none")
DROPOUT_KINDS = ("dropout", "edges+dropout")  # the kinds whose variations come from the decoder's dropout
DROPOUT_DOMAIN = 0x44524F504F5554  # "DROPOUT": the seed word of the dropout masks' chunk seeds


@dataclass(frozen=True)
class TranslatorInfo:
    """What a translation checkpoint says about its two domains."""

    path: str  # local checkpoint folder
    digest: str  # sha256 of model.pt
    step: int  # training step of the weights
    config: Any  # the run's ExperimentConfig
    class_names: tuple[str, ...]  # domain A's classes (the labels a translated row keeps)
    input_shape: tuple[int, int, int]  # (C, H, W) the generator takes (outlines: 1 channel)
    source_shape: tuple[int, int, int]  # (C, H, W) of the images one gives --translate (edges: before the outline)
    output_shape: tuple[int, int, int]  # (C, H, W) it makes (domain B)
    variation: str  # one of VARIATION_KINDS
    conditional: bool  # the generator reads the input's label

    @property
    def factor(self) -> int:
        """How many times larger than its input an output is: > 1 for an upscaler, 1 for a translator."""
        return self.output_shape[-1] // self.input_shape[-1]

    @property
    def outlines(self) -> bool:
        """Trained on data.pairs=edges: it renders the outlines (``synthgen.data.pairs.edge_maps``) of images."""
        return self.variation == "edges+dropout"


def input_channels(data_cfg: Any) -> int:
    """Channels of domain A's images as the generator sees them: outlines have 1, else ``data.channels``."""
    return 1 if data_cfg.pairs == "edges" else int(data_cfg.channels)


def variation_kind(G: Any, data_cfg: Any) -> str:
    """How the variations of generator ``G`` differ (see the module docstring): by its noise input if it declares
    one, else by its dropout, if it has any."""
    from torch import nn

    if getattr(G, "draws_noise", False):
        return "noise"
    if not any(isinstance(m, nn.Dropout) for m in G.modules()):
        return "none"
    return "edges+dropout" if data_cfg.pairs == "edges" else "dropout"


def translator_shapes(config: Any, out_shape: tuple[int, int, int]) -> tuple[tuple[int, int, int], ...]:
    """(input, source) (C, H, W) of a translator run ``config`` that makes ``out_shape`` images: what G takes (outlines:
    1 channel; an upscaler: B's side / its factor) and what one gives it (edges: the images before outlining)."""
    from synthgen.models.registry import upscale_factor

    side = out_shape[-1] // upscale_factor(config.model.name, config.model.arch)
    return (input_channels(config.data), side, side), (int(config.data.channels), side, side)


def load_translator(path: str, use_ema: bool = True, device: str = "cpu") -> tuple[Any, TranslatorInfo]:
    """Rebuild the A -> B generator of a translation checkpoint in eval mode.

    Raises:
        ConfigError: a checkpoint of a noise model (a usage error: exit 2).
        CheckpointError: no loadable checkpoint, or weights that do not fit.
    """
    from synthgen.checkpoint import MODEL_FILE, file_sha256, load_payload
    from synthgen.config import ExperimentConfig, from_dict
    from synthgen.models import build_translation_models, get_model_spec

    payload = load_payload(path)
    config = from_dict(ExperimentConfig, payload["config"])
    if not get_model_spec(config.model.name).translation:
        raise ConfigError(
            f"checkpoint {path!r} is a {config.model.name!r} run, which draws images from noise; --translate needs "
            "a pix2pix, cyclegan, pixelda or srgan run (sample this one without --translate)"
        )
    out_shape = tuple(int(s) for s in payload["image_shape"])
    in_shape, source_shape = translator_shapes(config, out_shape)  # type: ignore[arg-type]
    names = tuple(payload["class_names"])
    G, _ = build_translation_models(config.model, in_shape, out_shape, len(names))
    try:
        G.load_state_dict(payload["generator_ema" if use_ema else "generator"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {path!r} does not fit the current model code ({str(exc).splitlines()[0]} ...); re-train"
        ) from exc
    G.to(device).eval()
    info = TranslatorInfo(
        path=payload["_path"],
        digest=file_sha256(os.path.join(payload["_path"], MODEL_FILE)),
        step=int(payload["step"]),
        config=config,
        class_names=names,
        input_shape=in_shape,
        source_shape=source_shape,
        output_shape=out_shape,  # type: ignore[arg-type]
        variation=variation_kind(G, config.data),
        conditional=bool(getattr(G, "conditional", False)),
    )
    return G, info


def translator_inputs(images: np.ndarray, info: TranslatorInfo) -> np.ndarray:
    """What the generator takes for uint8 ``images`` [N, C, H, W] of its source shape: their outlines
    ([N, 1, H, W], computed once on the whole set) for an ``edges`` pix2pix, else the images themselves."""
    if not info.outlines:
        return images
    from synthgen.data.pairs import edge_maps

    return edge_maps(images)


def check_per_image(per_image: int, variation: str) -> None:
    """Refuse K > 1 variations of a model that has no noise.

    Raises:
        ConfigError: ``per_image`` > 1 for a deterministic translator.
    """
    if per_image > 1 and variation == "none":
        raise ConfigError(
            f"per_image={per_image}: this translator (cyclegan, srgan) is deterministic (one output per input "
            "image), so its variations would be copies; use --per-image 1"
        )


def chunk_seed(seed: int, chunk_start: int) -> int:
    """The torch seed of the dropout masks (or noise) of the canonical chunk starting at sample id ``chunk_start``."""
    state = np.random.SeedSequence([int(seed), DROPOUT_DOMAIN, int(chunk_start)]).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1] & 0x7FFFFFFF) << 32)


def translate_rows(
    G: Any,
    inputs: np.ndarray,
    labels: np.ndarray,
    start: int,
    end: int,
    *,
    per_image: int,
    seed: int,
    variation: str,
    chunk_size: int,
    device: Any = "cpu",
) -> np.ndarray:
    """Images of sample ids ``[start, end)``: uint8 [end - start, C_out, H, W].

    Args:
        G: the translator (``load_translator``), in eval mode.
        inputs: uint8 [N, C_in, H, W] every input image as G takes it (edges: the outlines).
        labels: int64 [N] their labels (read by a class-conditional G).
        start, end: the sample id range (ids ``< N * per_image``).
        per_image: K, variations per input image.
        seed: the dataset seed (dropout masks, outline deformations).
        variation: ``variation_kind`` of the model.
        chunk_size: the canonical forward batch, aligned to sample ids.
        device: where G runs.
    """
    import torch
    from torch import nn

    from synthgen.data.pairs import elastic_rows
    from synthgen.pixels import to_float, to_uint8

    total = len(inputs) * per_image
    pieces = []
    dropout = [m for m in G.modules() if isinstance(m, nn.Dropout)] if variation in DROPOUT_KINDS else []
    for m in dropout:
        m.train()  # pix2pix's noise: dropout on at test time (switched back below, whatever happens)
    try:
        with torch.inference_mode():
            for s in range(start // chunk_size * chunk_size, end, chunk_size):
                ids = np.minimum(np.arange(s, s + chunk_size, dtype=np.int64), total - 1)  # [k] padding rows: dropped
                rows, js = ids // per_image, ids % per_image  # [k], [k]
                x = inputs[rows]  # [k, C_in, H, W] uint8
                warp = js > 0 if variation == "edges+dropout" else np.zeros(len(js), dtype=bool)  # variation 0: as is
                if warp.any():
                    x = x.copy()
                    x[warp] = elastic_rows(x[warp], rows[warp], js[warp], seed)
                if variation != "none":  # dropout masks or noise: a row depends on its id only
                    torch.manual_seed(chunk_seed(seed, s))
                y = torch.from_numpy(np.asarray(labels)[rows]).to(device)  # [k]
                out = G.translate(to_float(x).to(device), y)  # [k, C_out, H, W] in [-1, 1]
                lo, hi = max(start, s) - s, min(end, s + chunk_size) - s
                pieces.append(to_uint8(out[lo:hi]).cpu().numpy())
    finally:
        for m in dropout:
            m.eval()
    return np.concatenate(pieces) if pieces else np.zeros((0, *inputs.shape[1:]), dtype=np.uint8)
