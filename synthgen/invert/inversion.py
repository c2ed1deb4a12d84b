"""GAN inversion and latent-neighbour sampling: new variations of given real images.

A generator trained on a few hundred images and sampled from its prior mostly redraws what a classifier of
those same images already has. Sampled *around* each real image instead (the uplift metric's default pool):
invert image ``i`` into the latent ``z_i`` whose image is closest to it, then draw ``z_i + sigma * eps``.
The results keep the real image's class and rough layout and vary it the way the generator learned images
of the whole set vary (a learned augmentation, in the spirit of DAGAN, Antoniou et al. 2017).

Every random number is counter-based (``synthgen.draws``): restart ``r`` of image ``i`` and the noise of
variation ``j`` of image ``i`` are pure functions of (seed, i, r or j), where ``i`` is the image's index in its
real set. So an image's inversion and its variations do not depend on which actor, batch or chunk computes them;
the uplift metric's pool and ``synthgen sample --around`` (``synthgen.sample.around``) share this code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from synthgen.draws import around_noise, restart_latents
from synthgen.errors import ConfigError
from synthgen.models.latent import latent_space
from synthgen.pixels import to_float, to_uint8


@dataclass(frozen=True)
class Inversion:
    """Latents that reproduce given images through one generator."""

    latents: torch.Tensor  # [N, dim] float32 in the generator's latent space, z_i such that G(z_i, y_i) ~ image i
    labels: np.ndarray  # [N] int64 class of each image (the generator's condition)
    mse: float  # mean squared pixel error of G(z_i, y_i) vs image i, pixels in [-1, 1]
    start_mse: float  # the same for the best random restart, before any optimisation
    errors: np.ndarray | None = None  # [N] float32 per-image pixel error after optimising (mse is their mean)
    start_errors: np.ndarray | None = None  # [N] float32 per-image pixel error of the start


def invert(
    generator: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    steps: int = 300,
    lr: float = 0.05,
    restarts: int = 8,
    prior_weight: float = 0.01,
    seed: int = 0,
    batch_size: int = 1000,
    image_ids: np.ndarray | None = None,
    init: torch.Tensor | None = None,
) -> Inversion:
    """Find, per image, the latent whose generated image (at that image's label) is closest in pixels.

    The best of ``restarts`` prior draws starts ``steps`` Adam steps on the squared pixel error plus
    ``prior_weight`` * the space's penalty (mean(z^2) for z), which keeps the latent where the prior has
    mass. The latents live in the space the generator declares (``synthgen.models.latent``: z, or W for
    stylegan). Images are independent (the generator runs in eval mode), so the result does not depend
    on ``batch_size``.

    Args:
        generator: conditional generator ``G(z [B, z_dim], y [B]) -> [B, C, H, W]`` in [-1, 1], with ``z_dim``
            (and optionally its own ``latent_space()``).
        images: uint8 [N, C, H, W].
        labels: int [N].
        steps: Adam steps per image (0 = best restart only).
        lr: Adam learning rate on z.
        restarts: prior draws tried per image before optimising.
        prior_weight: weight of the mean(z^2) penalty.
        seed: seed of the restarts.
        batch_size: images optimised together.
        image_ids: int64 [N] index of each image in its real set (default 0..N-1): keys its restarts, so
            image i starts from the same draws whichever chunk of the set it is inverted in.
        init: optional start latents [N, dim] in the generator's latent space (e.g.
            ``synthgen.invert.encoder.encode``): the optimisation starts from them instead of the best restart
            (no restarts are tried; ``start_mse`` is the error at ``init``, and ``steps=0`` returns ``init``).

    Returns:
        The Inversion (latents on the CPU).

    Raises:
        ConfigError: mismatched or no images/labels/image_ids, ``restarts`` < 1, ``steps`` < 0 or ``init``
            not [N, dim].
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ConfigError(
            f"invert needs one label per image and at least one image, got {len(images)} images "
            f"and {len(labels)} labels"
        )
    if restarts < 1 or steps < 0:
        raise ConfigError(f"invert needs restarts >= 1 and steps >= 0, got restarts={restarts}, steps={steps}")
    generator.eval()
    space = latent_space(generator)
    z_dim = int(generator.z_dim)
    device = next(generator.parameters()).device
    ids = np.arange(len(images), dtype=np.int64) if image_ids is None else np.asarray(image_ids, dtype=np.int64)
    if ids.shape != (len(images),):
        raise ConfigError(f"invert needs one image id per image, got {ids.shape} for {len(images)} images")
    starts = _start_latents(space, ids, restarts, seed, z_dim, init)  # [R, N, z_dim] or [1, N, dim], CPU
    targets = to_float(images).contiguous()  # [N, C, H, W] in [-1, 1]
    y_all = torch.as_tensor(np.asarray(labels), dtype=torch.long)  # [N]
    latents, errors, start_errors = [], [], []
    with torch.inference_mode(False), torch.enable_grad():
        for lo in range(0, len(images), batch_size):
            z, err, start_err = _invert_chunk(
                space,
                starts[:, lo : lo + batch_size].to(device),
                y_all[lo : lo + batch_size].to(device),
                targets[lo : lo + batch_size].to(device),
                steps=steps,
                lr=lr,
                prior_weight=prior_weight,
                from_prior=init is None,
            )
            latents.append(z.cpu())
            errors.append(err)
            start_errors.append(start_err)
    err, start = torch.cat(errors), torch.cat(start_errors)  # [N], [N]
    return Inversion(
        latents=torch.cat(latents),
        labels=y_all.numpy(),
        mse=float(err.mean()),
        start_mse=float(start.mean()),
        errors=err.numpy().astype(np.float32),
        start_errors=start.numpy().astype(np.float32),
    )


def _start_latents(
    space: Any, ids: np.ndarray, restarts: int, seed: int, z_dim: int, init: torch.Tensor | None
) -> torch.Tensor:
    """The candidate starts on the CPU: ``restarts`` prior z draws per image [R, N, z_dim], counter-based per
    (seed, image id, restart) so independent of batching and of the other images; or the given ``init``
    [1, N, dim] (an encoder's), one candidate per image, nothing drawn."""
    if init is None:
        return torch.from_numpy(restart_latents(ids, restarts, seed, z_dim))
    if tuple(init.shape) != (len(ids), space.dim):
        raise ConfigError(
            f"invert: init must be [N, dim] = [{len(ids)}, {space.dim}] ({space.name} space), got "
            f"{tuple(init.shape)}; pass one latent per image (synthgen.invert.encoder.encode)"
        )
    return init.detach().to(device="cpu", dtype=torch.float32)[None]


def _invert_chunk(
    space: Any,
    candidates: torch.Tensor,
    y: torch.Tensor,
    x: torch.Tensor,
    *,
    steps: int,
    lr: float,
    prior_weight: float,
    from_prior: bool,
) -> tuple[torch.Tensor, ...]:
    """Invert one chunk: the best candidate per image, then ``steps`` Adam steps on it.

    Args:
        candidates: [R, B, z_dim] prior z draws (``from_prior``, mapped into the space here) or [1, B, dim].
        y: int64 [B] labels; x: [B, C, H, W] target images in [-1, 1].

    Returns:
        (latents [B, dim] detached, final pixel errors [B] on the CPU, the best start's errors [B] on the CPU).
    """
    with torch.no_grad():
        if from_prior:  # prior z draws into the space: [R, B, dim]
            candidates = torch.stack([space.from_z(c, y) for c in candidates])
        err = torch.stack([_pixel_error(space, c, y, x) for c in candidates])  # [R, B]
    best_err, best = err.min(0)  # [B], [B]
    z = candidates[best, torch.arange(len(y), device=y.device)].clone().requires_grad_(True)  # [B, dim]
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        loss = _pixel_error(space, z, y, x) + prior_weight * space.penalty(z, y)  # [B]
        # Gradients for z only: the generator's own .grad stays untouched.
        (z.grad,) = torch.autograd.grad(loss.sum(), z)
        opt.step()
    with torch.no_grad():
        final = _pixel_error(space, z, y, x)
    return z.detach(), final.cpu(), best_err.cpu()


def _pixel_error(space: Any, latent: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared pixel error per row: [B]."""
    return (space.generate(latent, y) - x).pow(2).flatten(1).mean(1)


def neighbour_latents(
    latents: torch.Tensor,
    rows: np.ndarray,
    image_ids: np.ndarray,
    variations: np.ndarray,
    sigma: float,
    seed: int,
    scale: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """Latents of variations ``j`` around inverted images: ``z_i + sigma * scale * eps(seed, i, j)``.

    The one formula of both the uplift pool and ``synthgen sample --around`` (through ``around_images``).

    Args:
        latents: float32 [M, dim] inverted latents.
        rows: int64 [n] which row of ``latents`` each variation starts from.
        image_ids: int64 [n] the real-set index ``i`` of that row (keys the noise).
        variations: int64 [n] the variation number ``j``.
        sigma: latent noise scale in prior units (0 = the reconstructions themselves).
        seed: dataset seed.
        scale: the space's spread, 1.0 or [n, dim] (``LatentSpace.noise_scale``: 1 for z, w's std for W).

    Returns:
        float32 [n, dim]; row k depends only on (latents[rows[k]], seed, image_ids[k], variations[k], sigma, scale).
    """
    noise = torch.from_numpy(around_noise(image_ids, variations, seed, latents.shape[1]))  # [n, dim]
    return latents[torch.as_tensor(np.asarray(rows, dtype=np.int64))] + sigma * scale * noise  # [n, dim]


def around_images(
    space: Any,
    latents: torch.Tensor,
    rows: np.ndarray,
    image_ids: np.ndarray,
    variations: np.ndarray,
    labels: np.ndarray,
    sigma: float,
    seed: int,
    device: Any,
) -> torch.Tensor:
    """Images of variations around inverted images, in the generator's latent space (``neighbour_latents``).

    Args:
        space: ``synthgen.models.latent.latent_space(G)`` (create it once per batch loop: W caches class stats).
        latents, rows, image_ids, variations, sigma, seed: as in ``neighbour_latents``.
        labels: int64 [n] each variation's class (its source image's).
        device: the generator's device.

    Returns:
        uint8 [n, C, H, W] on ``device``.
    """
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64), device=device)  # [n]
    scale = space.noise_scale(y)
    scale = scale.cpu() if torch.is_tensor(scale) else scale
    latent = neighbour_latents(latents, rows, image_ids, variations, sigma, seed, scale)  # [n, dim]
    return to_uint8(space.generate(latent.to(device), y))


@torch.inference_mode()
def neighbour_images(
    generator: nn.Module, inversion: Inversion, num_samples: int, sigma: float, seed: int = 0, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """``num_samples`` images drawn around the inverted images: ``G(z_i + sigma * scale * eps, y_i)``.

    Sample ``s`` is variation ``k = s div N`` of inverted image ``perm_k[s mod N]`` (``neighbour_latents``),
    where each ``perm_k`` is a seeded permutation, so every image is used once per N samples and any prefix
    spreads over the set.

    Args:
        generator: the generator the inversion was made with.
        inversion: from ``invert``.
        num_samples: how many images.
        sigma: latent noise scale (0 = the reconstructions themselves).
        seed: seed of the permutation and of the noise.
        batch_size: generator batch size (does not change the images).

    Returns:
        (images uint8 [num_samples, C, H, W], labels int64 [num_samples]): each image has its source's label.

    Raises:
        ConfigError: negative ``sigma`` or ``num_samples`` < 1.
    """
    if sigma < 0 or num_samples < 1:
        raise ConfigError(f"neighbour_images needs sigma >= 0 and num_samples >= 1, got {sigma}, {num_samples}")
    generator.eval()
    n = len(inversion.latents)
    rng = np.random.default_rng(seed)
    cycles = -(-num_samples // n)
    source = np.concatenate([rng.permutation(n) for _ in range(cycles)])[:num_samples]  # [num_samples] image varied
    variation = np.arange(num_samples, dtype=np.int64) // n  # [num_samples] the cycle: variation j of its image
    device = next(generator.parameters()).device
    space = latent_space(generator)
    chunks = []
    labels = inversion.labels[source].astype(np.int64)  # [num_samples] each sample keeps its source's class
    for lo in range(0, num_samples, batch_size):
        rows = source[lo : lo + batch_size]
        chunks.append(
            around_images(
                space,
                inversion.latents,
                rows,
                rows,
                variation[lo : lo + batch_size],
                labels[lo : lo + batch_size],
                sigma,
                seed,
                device,
            )
            .cpu()
            .numpy()
        )
    return np.concatenate(chunks), labels
