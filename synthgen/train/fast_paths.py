"""Device fast paths of the train step: channels_last, bf16 autocast, TF32, fused Adam, torch.compile.

``TrainConfig`` holds what the user asked for ("auto" = on for CUDA, off elsewhere); ``resolve_fast_paths``
turns that into what one device will run. With every path off the step is exactly the plain fp32 step,
which is what a default config gets on a CPU (bit for bit: tests compare against it).

    fast = resolve_fast_paths(cfg.train, device)
    apply_backend_flags(fast)                                # TF32 (process-wide, CUDA only)
    G = prepare_module(G, fast)                              # NHWC weights, before DDP and EMA copy it
    opt = make_adam(G.parameters(), lr, betas, fast.fused_adam)
    with autocast(fast, device): ...                         # forwards only; losses/penalties in fp32

Optimizer state stays portable: ``make_adam`` hooks ``load_state_dict`` so a checkpoint written by fused
Adam loads into the standard one and back (the optimizer keeps its own mode; Adam's moments and step
counts are the same numbers in both), and moments saved in one memory format follow the parameters'.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from synthgen.config import TrainConfig
from synthgen.log import get_logger

_WARNED: set[str] = set()  # fallback messages already logged by this process (each is logged once)
_MODE_KEYS = ("fused", "foreach", "capturable")  # Adam implementation flags a loaded state dict must not override


@dataclass(frozen=True)
class FastPaths:
    """The fast paths one train step runs with, resolved for its device (all False = the plain fp32 step)."""

    channels_last: bool = False  # G/D weights and image batches in NHWC
    bf16: bool = False  # G/D forwards under torch.autocast(bfloat16)
    tf32: bool = False  # TF32 matmuls and convolutions (only ever True on CUDA)
    fused_adam: bool = False  # asked for fused Adam (whether the device took it: the optimizer's defaults)
    compile: bool = False  # G and D forwards through torch.compile

    def describe(self, fused_in_use: bool | None = None) -> str:
        """One line naming every path, e.g. ``channels_last=on precision=bf16 tf32=on fused_adam=on compile=off``.

        Args:
            fused_in_use: whether the optimizers really are fused (None = as asked); a request that
                fell back reads ``fused_adam=off (fallback: unsupported here)``.
        """
        onoff = {True: "on", False: "off"}
        fused = onoff[self.fused_adam]
        if self.fused_adam and fused_in_use is False:
            fused = "off (fallback: unsupported here)"
        return (
            f"channels_last={onoff[self.channels_last]} precision={'bf16' if self.bf16 else 'fp32'} "
            f"tf32={onoff[self.tf32]} fused_adam={fused} compile={onoff[self.compile]}"
        )


def resolve_fast_paths(train: TrainConfig, device: torch.device) -> FastPaths:
    """What ``train``'s options mean on ``device``: "auto" turns a path on for CUDA and off elsewhere.

    Args:
        train: the validated train section (values checked by ``TrainConfig``).
        device: where the networks live.

    Returns:
        The resolved switches. TF32 is off off-CUDA whatever was asked (it exists only there).
    """
    cuda = device.type == "cuda"

    def on(value: bool | str) -> bool:
        return cuda if value == "auto" else bool(value)

    bf16 = train.precision == "bf16" or (train.precision == "auto" and cuda)
    return FastPaths(
        channels_last=on(train.channels_last),
        bf16=bf16,
        tf32=on(train.tf32) and cuda,
        fused_adam=on(train.fused_adam),
        compile=bool(train.compile),
    )


def apply_backend_flags(fast: FastPaths) -> None:
    """Turn TF32 on for CUDA matmuls and cuDNN convolutions when ``fast.tf32`` (process-wide; never turned off).

    The legacy ``allow_tf32`` switches, not the newer ``fp32_precision`` ones: mixing the two APIs makes
    torch refuse to read either, and the rest of torch (inductor included) still reads the legacy ones.
    """
    if fast.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def prepare_module(module: nn.Module, fast: FastPaths) -> nn.Module:
    """Put ``module``'s 4-D weights in NHWC when ``fast.channels_last`` (in place; before DDP wraps it).

    Returns:
        ``module`` itself.
    """
    if fast.channels_last:
        module.to(memory_format=torch.channels_last)
    return module


def to_memory_format(x: torch.Tensor, fast: FastPaths) -> torch.Tensor:
    """An image batch [B, C, H, W] in NHWC when ``fast.channels_last``; ``x`` itself otherwise."""
    return x.contiguous(memory_format=torch.channels_last) if fast.channels_last else x


def autocast(fast: FastPaths, device: torch.device) -> torch.autocast:
    """The autocast context of the forwards: bfloat16 when ``fast.bf16``, a disabled one otherwise."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=fast.bf16)


def maybe_compile(module: nn.Module, fast: FastPaths) -> nn.Module:
    """``torch.compile(module)`` when ``fast.compile``, else ``module``.

    The compiled wrapper shares the parameters; checkpoints and the EMA keep using the bare module (its
    state dict has no ``_orig_mod.`` prefixes). Double backward (R1, WGAN-GP) does not compile: callers run
    penalties through the bare module.
    """
    return torch.compile(module) if fast.compile else module


def make_adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float], fused: bool) -> torch.optim.Adam:
    """Adam over ``params``; fused (one kernel per step) when asked and the device supports it.

    Args:
        params: the parameters to optimise.
        lr: learning rate.
        betas: Adam's (beta1, beta2).
        fused: try ``fused=True``; when torch refuses (device without a fused kernel), fall back to the
            standard Adam and log a warning once per process. ``defaults['fused']`` tells which one it is.

    Returns:
        The optimizer, with a ``load_state_dict`` hook that keeps its own mode (see the module docstring).
    """
    params = list(params)
    opt = None
    if fused:
        try:
            opt = torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        except (RuntimeError, ValueError) as exc:
            _warn_once(
                f"train.fused_adam: fused Adam is not supported here ({exc}); using the standard Adam. "
                "Set train.fused_adam=false to silence this"
            )
    if opt is None:
        opt = torch.optim.Adam(params, lr=lr, betas=betas)  # the plain step's optimizer, exactly
    opt.register_load_state_dict_post_hook(_keep_own_mode({k: opt.defaults.get(k) for k in _MODE_KEYS}))
    return opt


def _keep_own_mode(mode: dict[str, Any]):
    """A post-load hook restoring ``mode`` (fused/foreach/capturable) and placing state to match it.

    ``Optimizer.load_state_dict`` takes every group setting from the checkpoint, including the
    implementation flags, so without this a standard-Adam checkpoint would silently turn a fused
    optimizer standard (and a fused one would turn a CPU run fused). Step counts live on the parameter's
    device as float32 for fused/capturable Adam and on the CPU otherwise; moments take the parameter's
    memory format (a channels_last run resumed without it, or the reverse).
    """

    def hook(opt: torch.optim.Optimizer) -> None:
        on_device = bool(mode.get("fused")) or bool(mode.get("capturable"))
        for group in opt.param_groups:
            group.update(mode)
            for p in group["params"]:
                state = opt.state.get(p, {})
                for key, value in list(state.items()):
                    if not torch.is_tensor(value):
                        continue
                    if key == "step":
                        state[key] = value.to(device=p.device, dtype=torch.float32) if on_device else value.cpu()
                    elif value.shape == p.shape and value.stride() != p.stride():
                        state[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)

    return hook


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        get_logger().warning(message)
