"""Train the latent encoder of one generator checkpoint (``synthgen train-encoder``).

The generator is frozen (eval mode). Latents live in the space the generator declares
(``synthgen.models.latent``: its z, or W for stylegan). Each step draws z ~ N(0, I) and uniform labels, its
latent l = from_z(z, y), x = G(l, y) rounded to uint8 pixels (what ``encode`` will see), and minimises
``latent_weight * |E(x, y) - l|^2 + pixel_weight * |G(E(x, y), y) - x|^2``; with ``real_data: train`` it adds
``real_weight`` times the pixel reconstruction error of a batch of the checkpoint's own training images
(in-domain inversion, Zhu et al. 2020), plus ``prior_weight`` times the space's penalty on their latents,
the prior penalty ``invert`` uses. The latent term alone would regress to the posterior mean (many
directions barely change the image); the pixel terms make the prediction reconstruct, which is what a
short refinement by ``invert`` needs.

File format, ``load_encoder`` and ``encode``: ``synthgen.invert.encoder``.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
from torch import nn

from synthgen.checkpoint import CheckpointInfo
from synthgen.errors import CheckpointError, DataError, TrainingDivergedError
from synthgen.invert.encoder import EncoderConfig, EncoderInfo, encode, load_encoder, save_encoder, target_for
from synthgen.log import get_logger
from synthgen.models.encoder import LatentEncoder, encoder_for
from synthgen.models.latent import latent_space
from synthgen.pixels import to_float, to_uint8


def train_encoder(cfg: EncoderConfig) -> EncoderInfo:
    """Train an encoder against a checkpoint's frozen generator and write it into the run folder.

    Args:
        cfg: the resolved config.

    Returns:
        The written encoder's info.

    Raises:
        ConfigError: invalid config, no or remote checkpoint (nothing written).
        CheckpointError: unloadable checkpoint, or an encoder for it exists and ``overwrite`` is off.
        DataError: the real training images do not fit the generator.
        TrainingDivergedError: a loss became NaN or infinite (nothing written).
    """
    cfg.validate()
    target, generator, info = target_for(cfg)
    if os.path.exists(target) and not cfg.overwrite:
        raise CheckpointError(
            f"{target} already holds an encoder for this checkpoint; pass --overwrite to "
            "retrain it (or --set overwrite=true)"
        )
    real = _real_images(cfg, info) if cfg.real_data == "train" and cfg.real_weight > 0 else None
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    log = get_logger()
    log.info(
        f"training an encoder for {info.path} (step {info.step}) for {cfg.steps} steps"
        + (f" on generator samples and {len(real[0])} real training images" if real else " on generator samples")
    )
    cpu = time.process_time()  # every thread of this process: the one-off cost the bench amortises
    encoder, losses = fit_encoder(generator, cfg, real)
    cpu = time.process_time() - cpu
    losses.update(heldout_errors(encoder, generator, seed=cfg.seed + 1))
    save_encoder(target, encoder, info, cfg, losses, train_cpu_seconds=cpu)
    log.info(
        f"encoder written to {target} after {cpu:.0f} CPU-s: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items())
    )
    loaded = load_encoder(info.path)
    if loaded is None:  # just written for this very digest: anything else is a bug
        raise CheckpointError(f"the encoder written to {target} does not read back; delete it and retry")
    return loaded[1]


def _real_images(cfg: EncoderConfig, info: CheckpointInfo) -> tuple[np.ndarray, np.ndarray]:
    """The checkpoint's own training images (its data config, training split, same subset).

    Raises:
        DataError: their shape or classes do not match the generator's.
    """
    from synthgen.data import load_images

    data = load_images(info.config.data, "train")
    if tuple(data.images.shape[1:]) != tuple(info.image_shape) or len(data.class_names) != len(info.class_names):
        raise DataError(
            f"the checkpoint's training data ({data.images.shape[1:]}, {len(data.class_names)} classes) "
            f"does not fit its generator ({info.image_shape}, {len(info.class_names)} classes); "
            "restore the data the run was trained on, or pass --set real_data=none"
        )
    return data.images, data.labels


def fit_encoder(
    generator: nn.Module, cfg: EncoderConfig, real: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[LatentEncoder, dict[str, float]]:
    """Train a fresh encoder against the frozen ``generator`` (in memory; nothing is written).

    Args:
        generator: conditional or unconditional generator with ``z_dim``, ``image_shape``, ``num_classes``.
        cfg: steps, batch size, learning rate, weights, seed, width.
        real: optional (uint8 images [M, C, H, W], labels [M]) whose pixel reconstruction is also trained.

    Returns:
        (the encoder in eval mode, unweighted training losses, means over the last ``min(100, steps)`` steps).

    Raises:
        TrainingDivergedError: a loss became NaN or infinite.
    """
    generator.eval()
    flags = [p.requires_grad for p in generator.parameters()]
    for p in generator.parameters():
        p.requires_grad_(False)  # frozen: only the encoder learns (restored on the way out)
    try:
        return _fit(generator, cfg, real)
    finally:
        for p, flag in zip(generator.parameters(), flags):
            p.requires_grad_(flag)


def _fit(
    generator: nn.Module, cfg: EncoderConfig, real: tuple[np.ndarray, np.ndarray] | None
) -> tuple[LatentEncoder, dict[str, float]]:
    """The training loop of ``fit_encoder`` (generator already frozen)."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    encoder = encoder_for(generator, cfg.channels).train()
    opt = torch.optim.Adam(encoder.parameters(), lr=cfg.lr)
    # cosine decay to 5% of lr: the last steps settle instead of bouncing around the minimum
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.05 + 0.475 * (1 + math.cos(math.pi * s / cfg.steps)))
    gen = torch.Generator().manual_seed(cfg.seed)
    weights = {
        "latent": cfg.latent_weight,
        "pixel": cfg.pixel_weight,
        "real": cfg.real_weight,
        "prior": cfg.prior_weight,
    }
    rng = np.random.default_rng(cfg.seed)
    window: dict[str, list[float]] = {}
    bar = tqdm(range(1, cfg.steps + 1), desc="encoder", unit="step", disable=not cfg.progress, dynamic_ncols=True)
    for step in bar:
        terms = _step_losses(generator, encoder, cfg, gen, rng, real)  # unweighted scalar terms
        loss = sum(weights[k] * v for k, v in terms.items())
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"encoder loss became {float(loss)} at step {step}; lower --set lr=... (now {cfg.lr}) and retry"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        for key, value in terms.items():
            window.setdefault(key, []).append(float(value.detach()))
        if step % cfg.log_every == 0 or step == cfg.steps:
            recent = {k: float(np.mean(v[-cfg.log_every :])) for k, v in window.items()}
            bar.set_postfix({k: f"{v:.4f}" for k, v in recent.items()})
            if not cfg.progress:
                get_logger().info(
                    f"encoder step {step}/{cfg.steps} | " + " | ".join(f"{k} {v:.4f}" for k, v in recent.items())
                )
    encoder.eval()
    tail = min(100, cfg.steps)
    return encoder, {f"train_{k}": float(np.mean(v[-tail:])) for k, v in window.items()}


def _step_losses(
    generator: nn.Module,
    encoder: LatentEncoder,
    cfg: EncoderConfig,
    gen: torch.Generator,
    rng: np.random.Generator,
    real: tuple[np.ndarray, np.ndarray] | None,
) -> dict[str, torch.Tensor]:
    """The unweighted loss terms of one training step (scalar tensors, named as ``cfg``'s weights)."""
    space = latent_space(generator)
    z = torch.randn(cfg.batch_size, int(generator.z_dim), generator=gen)  # [B, z_dim]
    y = torch.randint(0, encoder.num_classes, (cfg.batch_size,), generator=gen)  # [B]
    with torch.no_grad():
        target = space.from_z(z, y)  # [B, dim]: the latent the encoder should predict
        x = to_float(to_uint8(space.generate(target, y)))  # [B, C, H, W], rounded to pixels as encode() sees them
    z_hat = encoder(x, y)  # [B, dim]
    terms = {"latent": (z_hat - target).pow(2).mean(), "pixel": (space.generate(z_hat, y) - x).pow(2).mean()}
    if real is not None:
        pick = rng.integers(0, len(real[0]), cfg.batch_size)  # [B] real images, with replacement
        xr = to_float(real[0][pick])  # [B, C, H, W]
        yr = torch.as_tensor(real[1][pick], dtype=torch.long)  # [B]
        zr = encoder(xr, yr)  # [B, z_dim]
        terms["real"] = (space.generate(zr, yr) - xr).pow(2).mean()
        terms["prior"] = space.penalty(zr, yr).mean()
    return terms


@torch.no_grad()
def heldout_errors(encoder: nn.Module, generator: nn.Module, num: int = 512, seed: int = 1) -> dict[str, float]:
    """Unweighted errors on ``num`` fresh generator samples: latent MSE and pixel MSE of ``G(E(x))``.

    Returns:
        ``{"heldout_latent_mse": ..., "heldout_pixel_mse": ...}``.
    """
    gen = torch.Generator().manual_seed(seed)
    space = latent_space(generator.eval())
    z = torch.randn(num, int(generator.z_dim), generator=gen)  # [num, z_dim]
    y = torch.randint(0, int(generator.num_classes), (num,), generator=gen)  # [num]
    target = space.from_z(z, y)  # [num, dim]
    images = to_uint8(space.generate(target, y)).numpy()  # [num, C, H, W] uint8
    z_hat = encode(encoder, images, y.numpy())  # [num, dim]
    pixel = (space.generate(z_hat, y) - to_float(images)).pow(2).mean()
    return {"heldout_latent_mse": float((z_hat - target).pow(2).mean()), "heldout_pixel_mse": float(pixel)}
