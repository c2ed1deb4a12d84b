"""Explicit model registry: ``@register_model("name")`` maps a name to a builder of (G, D).

Network contract (every registered model):
    G(z: [N, z_dim] float, labels: [N] int64) -> [N, C, H, W] float in [-1, 1]
    D(x: [N, C, H, W] float, labels: [N] int64) -> [N] float logits
Unconditional models accept ``labels`` and ignore them, so callers never branch on the model.
Both expose ``z_dim`` (G), ``num_classes`` and ``conditional`` attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from synthgen.config import ModelConfig
from synthgen.errors import ConfigError

# (model config, image shape (C, H, W), number of classes) -> (generator, discriminator)
Builder = Callable[[ModelConfig, tuple[int, int, int], int], tuple[nn.Module, nn.Module]]


@dataclass(frozen=True)
class ModelSpec:
    name: str  # registry key used in model.name
    build: Builder  # constructs fresh (G, D)
    conditional: bool  # whether G draws the requested class


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, conditional: bool) -> Callable[[Builder], Builder]:
    """Register ``build(cfg, image_shape, num_classes) -> (G, D)`` under ``name``."""

    def wrap(build: Builder) -> Builder:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = ModelSpec(name=name, build=build, conditional=conditional)
        return build

    return wrap


def get_model_spec(name: str) -> ModelSpec:
    """Return the registered spec for ``name``.

    Raises:
        ConfigError: unknown name; the message lists the registered ones.
    """
    import synthgen.models  # noqa: F401  (populates MODELS)

    if name not in MODELS:
        raise ConfigError(f"model.name={name!r} is not a registered model; choose one of {sorted(MODELS)}")
    return MODELS[name]


def build_models(
    cfg: ModelConfig, image_shape: tuple[int, int, int], num_classes: int
) -> tuple[nn.Module, nn.Module]:
    """Build a fresh (generator, discriminator) pair for ``cfg.name``.

    Raises:
        ConfigError: unknown model name or an unsupported image shape.
    """
    c, h, w = image_shape
    if h != w or h % 4 != 0 or c not in (1, 3):
        raise ConfigError(
            f"image shape {image_shape} unsupported: need square sides that are a multiple of 4 and 1 or 3 channels"
        )
    return get_model_spec(cfg.name).build(cfg, image_shape, num_classes)
