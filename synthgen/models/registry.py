"""Explicit model registry: ``@register_model("name", conditional, options)`` maps a name to a builder.

Network contract (every registered model):
    G(z: [N, z_dim] float, labels: [N] int64) -> [N, C, H, W] float in [-1, 1]
    D(x: [N, C, H, W] float, labels: [N] int64) -> [N] float logits
Unconditional models accept ``labels`` and ignore them, so callers never branch on the model.
Optionally either network defines ``set_training_step(step: int)``: the training step calls it before every
step, for schedules kept in the network's buffers (e.g. stylegan's class fade-in); nothing else calls it.
Both expose ``z_dim`` (G), ``num_classes`` and ``conditional`` attributes.
Models registered with ``codes=True`` also take InfoGAN codes (``synthgen.models.codes``): their builder gets
``codes=`` when ``model.codes`` is set, G becomes ``G(z, labels, codes=None)`` with ``codes``/``code_dim``
attributes, and ``D(x, labels, with_codes=True)`` returns ``(logits [N], Q's predictions [N, code_dim])``.
The same models take an auxiliary classifier (``model.aux_weight`` > 0, AC-GAN): their builder gets
``aux_classes=num_classes`` and D's Q head predicts ``[N, code_dim + num_classes]``, the class logits last.

Each model declares its own options: a frozen dataclass (one comment per field) that ``model.arch``
in the config is validated against (``synthgen.config.ModelConfig``), so a new architecture adds its
knobs in its own module and never widens the shared model section. Checks that also need the train section
(e.g. a size that must divide the batch) go in an optional ``check_with_train(train)`` method of the options
class, which ``ExperimentConfig.validate`` calls. This module does not import
``synthgen.config``: the config layer sits above the models and looks the options classes up here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from torch import nn

from synthgen.errors import ConfigError
from synthgen.models.blocks import check_shape
from synthgen.registries import lookup, register

# (the model's options, z_dim, image shape (C, H, W), number of classes) -> (generator, discriminator)
Builder = Callable[[Any, int, tuple[int, int, int], int], tuple[nn.Module, nn.Module]]


class ModelChoice(Protocol):
    """What ``build_models`` reads from a model config (``synthgen.config.ModelConfig`` is one)."""

    name: str  # registered model name
    z_dim: int  # latent size
    arch: Mapping[str, Any]  # the model's options as a mapping (field name -> value)
    codes: Sequence[Any]  # InfoGAN codes (name, kind, size); empty = none
    aux_weight: float  # auxiliary-classifier weight; > 0 adds class logits to D's Q head


@dataclass(frozen=True)
class ModelSpec:
    name: str  # registry key used in model.name
    build: Builder  # constructs fresh (G, D)
    conditional: bool  # whether G draws the requested class
    options: type  # frozen dataclass of this model's ``model.arch`` options (defaults = the documented ones)
    codes: bool = False  # whether D has a Q head: the builder takes InfoGAN ``codes=`` and ``aux_classes=``
    # image -> image (pix2pix, cyclegan): the builder takes (options, in_shape, out_shape, num_classes) and
    # ``objective(options, seed)`` is what a training step asks of the model (synthgen.train.translation_step)
    translation: bool = False
    paired: bool = False  # translation trained on pairs (row i of B is row i of A translated)
    objective: Callable[..., Any] | None = None


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, conditional: bool, options: type, codes: bool = False) -> Callable[[Builder], Builder]:
    """Register ``build(options, z_dim, image_shape, num_classes) -> (G, D)`` under ``name``.

    ``build_models`` checks the image shape (and, for a conditional model, that there are classes) before it
    calls the builder, so builders only check what is particular to them.

    Args:
        name: the ``model.name`` users select it by.
        conditional: whether G draws the requested class.
        options: a frozen dataclass whose every field has a default; ``model.arch`` fills it.
        codes: the builder also takes ``codes=`` (InfoGAN codes; passed only when ``model.codes`` is set).

    Raises:
        ValueError: ``name`` is taken, or ``options`` is not a dataclass with defaults for every field.
    """
    if not dataclasses.is_dataclass(options) or not isinstance(options, type):
        raise ValueError(f"model {name!r}: options must be a dataclass type, got {options!r}")
    missing = [
        f.name
        for f in dataclasses.fields(options)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:  # an empty model.arch must describe a working model
        raise ValueError(f"model {name!r}: options {options.__name__} fields {missing} need a default")

    def wrap(build: Builder) -> Builder:
        spec = ModelSpec(name=name, build=build, conditional=conditional, options=options, codes=codes)
        register(MODELS, name, spec, "model")
        return build

    return wrap


def register_translation_model(
    name: str, options: type, objective: Callable[..., Any], paired: bool
) -> Callable[[Callable[..., tuple[nn.Module, nn.Module]]], Callable[..., tuple[nn.Module, nn.Module]]]:
    """Register an image -> image model: ``build(options, in_shape, out_shape, num_classes) -> (G, D)``, where
    ``G.translate(a, labels)`` maps domain A's images to B's, and its training ``objective(options, seed)``.

    Args:
        name: the ``model.name`` users select it by.
        options: a frozen dataclass whose every field has a default; ``model.arch`` fills it.
        objective: builds what the training step calls (paired or not, generator passes, both losses).
        paired: whether it trains on pairs (``data.pairs`` or two folders matched by path) or unpaired domains.
    """
    noise_wrap = register_model(name, conditional=False, options=options)

    def wrap(build: Callable[..., tuple[nn.Module, nn.Module]]) -> Callable[..., tuple[nn.Module, nn.Module]]:
        noise_wrap(build)
        MODELS[name] = dataclasses.replace(MODELS[name], translation=True, paired=paired, objective=objective)
        return build

    return wrap


def get_model_spec(name: str) -> ModelSpec:
    """Return the registered spec for ``name``.

    Raises:
        ConfigError: unknown name; the message lists the registered ones.
    """
    # No import of synthgen.models here (that would be a cycle): importing this module runs the
    # package's __init__ first, which imports every model module and so fills MODELS.
    return lookup(MODELS, name, "model.name", "model")


def q_head_models() -> list[str]:
    """The registered models whose D has a Q head (InfoGAN codes, the auxiliary classifier), sorted."""
    return sorted(n for n, s in MODELS.items() if s.codes)


def build_models(cfg: ModelChoice, image_shape: tuple[int, int, int], num_classes: int) -> tuple[nn.Module, nn.Module]:
    """Build a fresh (generator, discriminator) pair for ``cfg.name`` with options ``cfg.arch``.

    Args:
        cfg: the model config (its ``arch`` already validated by ``ModelConfig``).
        image_shape: (C, H, W) of the images.
        num_classes: number of labels (conditional models need >= 1).

    Raises:
        ConfigError: unknown model name, an unsupported image shape (or no classes for a conditional model),
            unknown ``arch`` keys.
    """
    spec = get_model_spec(cfg.name)
    if spec.translation:
        raise ConfigError(
            f"model.name={cfg.name!r} translates images (A -> B), it does not draw them from noise: train it "
            "with data_b: or data.pairs=edges; sample its checkpoints with `synthgen sample --translate DATA` "
            "and evaluate them with `synthgen evaluate --metrics transfer`"
        )
    check_shape(image_shape, num_classes, spec.conditional)  # here once, for every builder
    _check_arch(spec, cfg)
    codes = tuple(getattr(cfg, "codes", ()) or ())
    aux_classes = num_classes if getattr(cfg, "aux_weight", 0.0) > 0.0 else 0
    if codes or aux_classes:  # only then: a model without a Q head is built by exactly the call it always was
        from synthgen.models.codes import check_q_head

        check_q_head(cfg.name, q_head_models(), codes, getattr(cfg, "aux_weight", 0.0))
        return spec.build(
            spec.options(**cfg.arch), cfg.z_dim, image_shape, num_classes, codes=codes, aux_classes=aux_classes
        )
    return spec.build(spec.options(**cfg.arch), cfg.z_dim, image_shape, num_classes)


def _check_arch(spec: ModelSpec, cfg: ModelChoice) -> None:
    valid = {f.name for f in dataclasses.fields(spec.options)}
    unknown = sorted(set(cfg.arch) - valid)
    if unknown:
        raise ConfigError(
            f"model.arch: unknown key(s) {unknown} for model {cfg.name!r}; valid keys are: {sorted(valid)}"
        )


def upscale_factor(name: str, arch: Mapping[str, Any]) -> int:
    """How many times B's side is A's for model ``name`` with options ``arch``: its options' ``factor`` (an upscaler,
    srgan), else 1 (a translator keeps the size).

    Raises:
        ConfigError: unknown model name, or options its dataclass refuses.
    """
    return int(getattr(get_model_spec(name).options(**arch), "factor", 1))


def build_translation_models(
    cfg: ModelChoice, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int], num_classes: int
) -> tuple[nn.Module, nn.Module]:
    """Build a fresh (G, D) of the image -> image model ``cfg.name`` from domain A's ``in_shape`` to B's.

    Raises:
        ConfigError: not an image -> image model; B's side not a power of two >= 16, A's not B's / the model's
            ``factor`` (1 unless its options have one: an upscaler), channels other than 1 and 3; unknown ``arch`` keys.
    """
    spec = get_model_spec(cfg.name)
    if not spec.translation:
        raise ConfigError(f"model.name={cfg.name!r} draws images from noise: it has no domain B to translate into")
    _check_arch(spec, cfg)
    factor = upscale_factor(cfg.name, cfg.arch)
    side = out_shape[-1]
    want_a = (side // factor, side // factor)
    if out_shape[1] != side or side < 16 or side & (side - 1) or tuple(in_shape[1:]) != want_a:
        if factor == 1:
            raise ConfigError(
                f"{cfg.name} translates square images of one power-of-two side >= 16 (16, 32, 64, 128, 256), got "
                f"A {tuple(in_shape)} and B {tuple(out_shape)}: set data.resolution and data_b.resolution to one "
                "such side"
            )
        raise ConfigError(
            f"{cfg.name} x{factor} upscales A images of side s to B images of side {factor}s, B's a power of two >= 16 "
            f"(16, 32, 64, 128, 256), got A {tuple(in_shape)} and B {tuple(out_shape)}: set data.resolution to B's "
            f"side (data.pairs=downsample derives A) or model.arch.factor to B's side / A's"
        )
    if in_shape[0] not in (1, 3) or out_shape[0] not in (1, 3):
        raise ConfigError(f"{cfg.name}: channels must be 1 or 3, got A {in_shape[0]} and B {out_shape[0]}")
    return spec.build(spec.options(**cfg.arch), tuple(in_shape), tuple(out_shape), num_classes)
