"""``synthgen sample --checkpoint CLASS_GAN_RUN --upscale SR_RUN``: the cascade. Every image the noise generator
makes (prior draws, the judge filter, ``--around``) is upscaled by an srgan checkpoint in the same actor call, span
by span, so a row is ``upscaler(uint8(G(...)))``: the same bytes as sampling at the generator's resolution, then
``--upscale-from`` that dataset with the upscaler (both run the upscaler on the same canonical chunks).

Refused with a ConfigError before anything is written: a checkpoint that does not upscale, and an upscaler whose
input (channels, side) is not what the generator makes.
"""

from __future__ import annotations

from typing import Any

from synthgen.config import to_dict
from synthgen.errors import ConfigError


def load_upscaler(spec: str, generated_shape: tuple[int, int, int]) -> tuple[dict[str, Any], Any]:
    """Load the upscaler ``spec`` for images of ``generated_shape`` (C, H, W).

    Returns:
        (actor spec {"model", "input_shape", "image_shape", "state"}: what every actor rebuilds it from,
        the upscaler's TranslatorInfo).

    Raises:
        ConfigError: not an upscaler (no larger output than input), or an input other than ``generated_shape``.
        CheckpointError: nothing loadable at ``spec``.
    """
    from synthgen.translation import load_translator

    try:
        G, info = load_translator(spec, use_ema=True, device="cpu")
    except ConfigError as exc:
        raise ConfigError(f"--upscale {spec}: {exc}") from exc
    if info.factor == 1:
        raise ConfigError(
            f"--upscale {spec}: a {info.config.model.name} checkpoint does not upscale ({list(info.input_shape)} -> "
            f"{list(info.output_shape)}); give an srgan run"
        )
    if tuple(info.input_shape) != tuple(generated_shape):
        raise ConfigError(
            f"--upscale {spec}: the upscaler takes {list(info.input_shape)} (C, H, W) images but the generator makes "
            f"{list(generated_shape)}; train the upscaler on data of the generator's channels with data.resolution "
            f"= factor x {generated_shape[-1]}, or choose the upscaler that fits"
        )
    part = {
        "model": to_dict(info.config.model),
        "input_shape": list(info.input_shape),
        "image_shape": list(info.output_shape),
        "state": {k: v.detach().clone() for k, v in G.state_dict().items()},
    }
    return part, info


def describe_upscaler(spec: str, info: Any) -> dict[str, Any]:
    """The manifest's "upscale" entry: the upscaler checkpoint (path, digest, step), its shapes, and the data it
    learned to upscale to (what ``synthgen evaluate --shards`` compares the cascade's images with)."""
    return {
        "checkpoint": {"path": spec, "resolved_path": info.path, "digest": info.digest, "step": info.step},
        "model": info.config.model.name,
        "data": to_dict(info.config.data),
        "input_shape": list(info.input_shape),
        "output_shape": list(info.output_shape),
    }
