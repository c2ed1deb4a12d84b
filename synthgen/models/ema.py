"""Exponential moving average of the generator's weights (the generator that gets sampled).

    ema = EMA(G, decay=cfg.ema_decay, start=cfg.ema_start)
    ... after optimizer step number ``step``:  ema.update(G, step)
    ema.module  # the averaged generator (eval mode, no grads); save ``ema.module.state_dict()``

Before ``start`` steps the copy just follows G (weights copied), because averaging in the early, rapidly
changing weights would only blur the result. From ``start`` on each float parameter moves as
``ema = decay * ema + (1 - decay) * G``. Buffers (BatchNorm running statistics, spectral-norm vectors) are
always copied: averaging running statistics of different networks has no meaning.

But G's running statistics do not fit the averaged weights either (measured on a 900-step cdcgan: eval-mode
EMA samples had pixel std 0.50 against 0.73 with batch statistics -- washed-out grey images). So before the
EMA generator is saved or sampled, call ``ema.recalibrate_bn()``: it recomputes every BatchNorm's running
statistics from the EMA generator's own activations on a fixed, seeded set of latents and balanced labels
("standing statistics", Brock et al. 2019). It is deterministic, so every DDP rank gets the same result, and
cheap (16 forward passes of 64 by default). The next ``update`` overwrites them with G's again.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from synthgen.errors import ConfigError


def unwrap(model: nn.Module) -> nn.Module:
    """Return the wrapped module of a DistributedDataParallel (or similar ``.module``) wrapper, else ``model``."""
    return getattr(model, "module", model)


class EMA:
    """Keeps ``module``, an averaged copy of a generator."""

    def __init__(self, model: nn.Module, decay: float, start: int = 0) -> None:
        """Copy ``model`` (unwrapping DDP) into an eval-mode, gradient-free average.

        Raises:
            ConfigError: ``decay`` outside [0, 1) or a negative ``start``.
        """
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"model.ema_decay={decay!r} is invalid: must be in [0, 1), e.g. 0.999")
        if start < 0:
            raise ConfigError(f"model.ema_start={start!r} is invalid: must be >= 0")
        self.decay, self.start = float(decay), int(start)
        self.module = copy.deepcopy(unwrap(model)).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold the current weights of ``model`` (DDP-wrapped or not) into the average.

        Args:
            model: the live generator, same architecture as ``self.module``.
            step: number of optimizer steps done so far; below ``start`` the weights are copied.
        """
        src = unwrap(model)
        src_params = dict(src.named_parameters())
        for name, p in self.module.named_parameters():
            s = src_params[name].detach()
            if step < self.start or not p.is_floating_point():
                p.copy_(s)
            else:
                p.lerp_(s.to(p.dtype), 1.0 - self.decay)  # p = decay * p + (1 - decay) * s
        src_buffers = dict(src.named_buffers())
        for name, b in self.module.named_buffers():
            b.copy_(src_buffers[name])

    @torch.no_grad()
    def recalibrate_bn(self, num_batches: int = 16, batch_size: int = 64, seed: int = 0) -> None:
        """Recompute the EMA generator's BatchNorm running statistics from its own activations.

        Args:
            num_batches: forward passes to average over (an exact cumulative average, not momentum).
            batch_size: latents per pass; labels cycle through all classes so each is equally represented.
            seed: seed of the latents, so the result is reproducible and identical on every rank.
        """
        m = self.module
        bns = [b for b in m.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm) and b.track_running_stats]
        if not bns or not hasattr(m, "z_dim"):
            # the mlp generator: nothing to recalibrate; an image -> image generator's BN (pixelda's task classifier)
            # sees images, not latents, and keeps the buffers copied from the trained network
            return
        param = next(m.parameters())
        num_classes = max(int(getattr(m, "num_classes", 1)), 1)
        rng = torch.Generator(device=param.device).manual_seed(seed)
        momenta = [b.momentum for b in bns]
        for b in bns:
            b.reset_running_stats()
            b.momentum = None  # None = cumulative average over all batches seen since the reset
        m.train()
        try:
            for i in range(num_batches):
                z = torch.randn(batch_size, m.z_dim, generator=rng, device=param.device, dtype=param.dtype)
                labels = (torch.arange(batch_size, device=param.device) + i * batch_size) % num_classes  # [B]
                m(z, labels)
        finally:
            for b, momentum in zip(bns, momenta):
                b.momentum = momentum
            m.eval()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged generator's state dict."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the average (e.g. on resume from a checkpoint's ``generator_ema``)."""
        self.module.load_state_dict(state)
