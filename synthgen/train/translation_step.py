"""One optimisation step of an image-to-image model (pix2pix, cyclegan): D, then G, like ``GANStep``.

The batch is ``(a [B, C_a, H, W], b [B, C_b, H, W], labels [B])`` in [-1, 1]: a paired batch for pix2pix (row i
of ``b`` is the translation of row i of ``a``), two independent draws for cyclegan (its labels unused).
The generator runs once per step (under its DDP wrapper, so every generator pass is in one synced forward); D's
update runs under D's wrapper on the detached fakes (cyclegan: drawn through the image pool), then G's update
runs on the bare, frozen D, so DDP syncs only the gradients of the network being trained. The EMA of the
generator is what gets sampled, as for the noise models. Plain fp32 (the device fast paths of ``GANStep`` are
not wired here yet).
"""

from __future__ import annotations

import torch
from torch import nn

from synthgen.checkpoint import TrainingState
from synthgen.config import ExperimentConfig
from synthgen.errors import ConfigError
from synthgen.train.fast_paths import make_adam


class TranslationStep:
    """Holds (G, D), their optimisers, G's EMA and the model's objective; ``step(a, b, labels, step)``.

    ``objective`` (the model module's ``*Objective``) says whether batches are paired and computes the generator
    passes and both losses; this class only orders the updates, so it never branches on the model.
    """

    def __init__(
        self, cfg: ExperimentConfig, G: nn.Module, D: nn.Module, G_train: nn.Module, D_train: nn.Module, objective
    ) -> None:
        """Args: the resolved config; the bare networks; their DDP wrappers (or themselves with one worker);
        the model's objective."""
        from synthgen.models import EMA

        t, m = cfg.train, cfg.model
        self.cfg, self.G, self.D, self.G_train, self.D_train = cfg, G, D, G_train, D_train
        self.objective, self.paired = objective, objective.paired
        self.opt_g = make_adam(G.parameters(), t.lr_g, (t.beta1, t.beta2), fused=False)
        self.opt_d = make_adam(D.parameters(), t.lr_d, (t.beta1, t.beta2), fused=False)
        self.ema = EMA(G, decay=m.ema_decay, start=m.ema_start)
        self.nan_at_step = -1  # test-only fault (synthgen.faults): the D loss becomes NaN at this step

    def training_state(self) -> TrainingState:
        """What a checkpoint saves and a restart restores (the bare networks; an image pool is not kept)."""
        return TrainingState(self.G, self.D, self.ema.module, self.opt_g, self.opt_d)

    def __call__(
        self, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor, step: int, gen: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One D update and one G update on the batch; returns the detached (d_loss, g_loss). ``gen``: the step's
        own random draws (e.g. srgan's input degradation), seeded by the caller from (seed, rank, step)."""
        out = self.objective.generate(self.G_train, a, b, labels, gen)  # the step's generator passes, one DDP forward
        d_loss = self.objective.d_loss(self.D_train, a, b, labels, out)
        if self.nan_at_step == step:
            d_loss = d_loss * float("nan")
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.D.requires_grad_(False)
        g_loss = self.objective.g_loss(self.D, a, b, labels, out)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        self.ema.update(self.G, step)
        return d_loss.detach(), g_loss.detach()


def build_translation_step(
    cfg: ExperimentConfig,
    in_shape: tuple[int, int, int],
    out_shape: tuple[int, int, int],
    num_classes: int,
    device: torch.device,
    distributed: bool = False,
    classifier: nn.Module | None = None,
) -> TranslationStep:
    """Build fresh networks of the image-to-image model ``cfg.model`` on ``device`` and the step that trains them.

    Args:
        cfg: the resolved experiment config.
        in_shape, out_shape: (C, H, W) of domain A's and domain B's images.
        num_classes: A's labels (class-conditional models use them).
        device: where the networks live.
        distributed: wrap G and D in DDP (inside a Ray Train worker's process group).
        classifier: the frozen classifier an objective that ``needs_classifier`` uses; None = ``data:``'s judge
            (``domain_classifier``). Benchmarks pass an untrained one (the speed does not depend on its weights).

    Raises:
        ConfigError: not an image-to-image model, or shapes it cannot take.
    """
    from synthgen.models import build_translation_models, get_model_spec

    spec = get_model_spec(cfg.model.name)
    opts = spec.options(**cfg.model.arch)
    G, D = build_translation_models(cfg.model, in_shape, out_shape, num_classes)
    G, D = G.to(device), D.to(device)
    G_train, D_train = G, D
    if distributed:  # one wrapper per network, as in GANStep
        ddp_kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
        G_train = nn.parallel.DistributedDataParallel(G, **ddp_kwargs)
        D_train = nn.parallel.DistributedDataParallel(D, **ddp_kwargs)
    objective = spec.objective(opts, cfg.train.seed)
    if objective.needs_classifier:
        objective.classifier = classifier if classifier is not None else domain_classifier(cfg, num_classes, device)
    return TranslationStep(cfg, G, D, G_train, D_train, objective)


def needs_domain_classifier(cfg: ExperimentConfig) -> bool:
    """Whether the objective of ``cfg.model`` asks for domain A's frozen classifier (cyclegan's semantic_weight)."""
    from synthgen.models import get_model_spec

    spec = get_model_spec(cfg.model.name)
    return bool(spec.objective(spec.options(**cfg.model.arch)).needs_classifier)


def domain_classifier(
    cfg: ExperimentConfig, num_classes: int, device: torch.device, progress: bool = False
) -> nn.Module:
    """Domain A's judge (a SmallCNN trained on ``cfg.data``'s whole labelled training split, cached per data set),
    frozen in eval mode on ``device``: the classifier of CyCADA's semantic consistency.

    The driver's preflight trains and caches it; a worker on the same machine loads it from the cache.

    Raises:
        ConfigError: the judge cannot be trained or loaded, or its classes are not A's.
    """
    from synthgen.errors import SynthgenError
    from synthgen.judge.cache import load_or_train_judge

    try:
        judge = load_or_train_judge(cfg.data, progress=progress)
    except SynthgenError as exc:
        raise ConfigError(
            f"model.arch.semantic_weight={cfg.model.arch.get('semantic_weight')} needs a classifier of domain A "
            f"(data:), its judge, which could not be trained or loaded: {exc}. Fix data: or set semantic_weight=0"
        ) from exc
    if len(judge.class_names) != num_classes:
        raise ConfigError(
            f"domain A's judge has {len(judge.class_names)} classes but data: has {num_classes}; "
            f"delete the judge cache folder {judge.path} and train again"
        )
    return judge.model.to(device).eval().requires_grad_(False)
