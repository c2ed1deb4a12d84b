"""Exponential moving average of the generator's weights (the generator that gets sampled).

    ema = EMA(G, decay=cfg.ema_decay, start=cfg.ema_start)
    ... after optimizer step number ``step``:  ema.update(G, step)
    ema.module  # the averaged generator (eval mode, no grads); save ``ema.module.state_dict()``

Before ``start`` steps the copy just follows G (weights copied), because averaging in the early, rapidly
changing weights would only blur the result. From ``start`` on each float parameter moves as
``ema = decay * ema + (1 - decay) * G``. Buffers (BatchNorm running statistics, spectral-norm vectors) are
always copied: averaging running statistics of different networks has no meaning.
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

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged generator's state dict."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the average (e.g. on resume from a checkpoint's ``generator_ema``)."""
        self.module.load_state_dict(state)
