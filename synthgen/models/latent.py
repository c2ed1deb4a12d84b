"""The latent space a generator is inverted, varied and truncated in, declared by the generator itself.

Callers (inversion, ``--around`` variations, truncation, the encoder) never branch on a model's name: they
ask ``latent_space(G)`` and use its five operations. A generator that defines ``latent_space()`` returns
its own space (``stylegan``: W, where inversion is better conditioned and truncation pulls toward the
class's mean w); every other generator gets ``ZSpace``, its input z itself.

    space = latent_space(G)
    latent = space.from_z(z, y, codes)                # [N, space.dim]: prior draws in this space
    image = space.generate(latent, y, codes)          # [N, C, H, W] in [-1, 1]
    latent = space.truncate(latent, y, psi)           # toward the space's centre for class y
    penalty = space.penalty(latent, y)                # [N]: ~1 for a typical prior draw, 0 at the centre
    latent = latent + sigma * space.noise_scale(y) * eps   # a variation of size sigma in prior units

``codes`` are InfoGAN code values [N, num_codes] (``synthgen.models.codes``) of a generator built with them;
None (the default, and all a generator without codes ever gets) = their prior mean. Z keeps them beside z
(``generate`` passes them to G); W absorbs them into w (``from_z``), so ``generate`` needs only w.

Pure tensor code: no I/O, no Ray.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn


class LatentSpace(Protocol):
    """What every latent space offers (``ZSpace``, ``WSpace``)."""

    name: str  # "z" or "w": recorded with inversions so a reader knows what the latents are
    dim: int  # latent size

    def from_z(self, z: Tensor, labels: Tensor, codes: Tensor | None = None) -> Tensor: ...
    def generate(self, latent: Tensor, labels: Tensor, codes: Tensor | None = None) -> Tensor: ...
    def truncate(self, latent: Tensor, labels: Tensor, psi: float) -> Tensor: ...
    def penalty(self, latent: Tensor, labels: Tensor) -> Tensor: ...
    def noise_scale(self, labels: Tensor) -> Tensor | float: ...


class ZSpace:
    """The generator's own input: ``z ~ N(0, I)``, centre 0, unit spread."""

    name = "z"

    def __init__(self, generator: nn.Module) -> None:
        self.generator = generator
        self.dim = int(generator.z_dim)

    def from_z(self, z: Tensor, labels: Tensor, codes: Tensor | None = None) -> Tensor:
        return z  # [N, z_dim]

    def generate(self, latent: Tensor, labels: Tensor, codes: Tensor | None = None) -> Tensor:
        if codes is None:  # exactly the call a generator without codes always got
            return self.generator(latent, labels)  # [N, C, H, W]
        return self.generator(latent, labels, codes)  # [N, C, H, W]

    def truncate(self, latent: Tensor, labels: Tensor, psi: float) -> Tensor:
        return latent if psi == 1.0 else latent * psi  # toward the prior's mean, 0

    def penalty(self, latent: Tensor, labels: Tensor) -> Tensor:
        return latent.pow(2).mean(1)  # [N]: E = 1 under the prior

    def noise_scale(self, labels: Tensor) -> float:
        return 1.0


class WSpace:
    """A mapping network's output ``w = G.mapping(z, y)``; images from ``G.synthesis(w)``.

    The centre and spread are each class's mean and per-dimension std of w over fixed z draws
    (``G.class_w_stats``, the same centre ``G.truncate`` uses), computed once per space object: create a
    new space after the weights change.
    """

    name = "w"

    def __init__(self, generator: nn.Module, num: int | None = None) -> None:
        self.generator = generator
        self.dim = int(generator.w_dim)
        self.num = num  # z draws per class behind the statistics; None = the generator's default
        self._stats: dict[int, tuple[Tensor, Tensor]] = {}  # class -> (mean [w_dim], std [w_dim])

    def from_z(self, z: Tensor, labels: Tensor, codes: Tensor | None = None) -> Tensor:
        return self.generator.mapping(z, labels, codes)  # [N, w_dim]

    def generate(self, latent: Tensor, labels: Tensor, codes: Tensor | None = None) -> Tensor:
        return self.generator.synthesis(latent)  # [N, C, H, W]; the class and the codes are in w already

    def truncate(self, latent: Tensor, labels: Tensor, psi: float) -> Tensor:
        """``mean + psi * (w - mean)`` toward each row's class-mean w.

        ``latent`` is W [N, w_dim] or W+ [N, L, w_dim].
        """
        if psi == 1.0:
            return latent
        mean = self._class_stats(labels)[0]  # [N, w_dim], cached: no mapping pass per batch
        if latent.dim() == 3:
            mean = mean[:, None]  # [N, 1, w_dim]
        return mean + psi * (latent - mean)

    def penalty(self, latent: Tensor, labels: Tensor) -> Tensor:
        mean, std = self._class_stats(labels)  # [N, w_dim] each
        return ((latent - mean) / std).pow(2).mean(1)  # [N]: E = 1 for the class's own prior draws

    def noise_scale(self, labels: Tensor) -> Tensor:
        return self._class_stats(labels)[1]  # [N, w_dim]

    def _class_stats(self, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Per-row (mean, std) of its class's w, [N, w_dim] each (``G.class_w_stats``, cached per class)."""
        missing = sorted({int(k) for k in labels.tolist()} - set(self._stats))
        if missing:
            ks = torch.tensor(missing, dtype=torch.long, device=labels.device)  # [K]
            kw = {} if self.num is None else {"num": self.num}
            mean, std = self.generator.class_w_stats(ks, **kw)  # [K, w_dim] each
            for i, k in enumerate(missing):
                self._stats[k] = (mean[i], std[i].clamp_min(1e-6))
        means = torch.stack([self._stats[int(k)][0] for k in labels.tolist()])  # [N, w_dim]
        stds = torch.stack([self._stats[int(k)][1] for k in labels.tolist()])  # [N, w_dim]
        return means, stds


def latent_space(generator: nn.Module) -> LatentSpace:
    """The space ``generator`` declares (its ``latent_space()``), or its input z.

    Args:
        generator: any registered generator.

    Returns:
        A ``LatentSpace`` bound to ``generator``.
    """
    declared = getattr(generator, "latent_space", None)
    return declared() if callable(declared) else ZSpace(generator)


def images_from_z(
    space: LatentSpace, z: Tensor, labels: Tensor, psi: float = 1.0, codes: Tensor | None = None
) -> Tensor:
    """Prior draws to images, truncated by ``psi`` in the generator's own space.

    Args:
        space: ``latent_space(G)``.
        z: [N, z_dim] prior draws.
        labels: [N] int64.
        psi: truncation in (0, 1]; 1.0 = off. It moves the latent only; InfoGAN codes stay as given.
        codes: [N, num_codes] InfoGAN code values, or None (no codes, or their prior mean).

    Returns:
        [N, C, H, W] in [-1, 1].
    """
    if codes is None:  # exactly the calls made before codes existed
        return space.generate(space.truncate(space.from_z(z, labels), labels, psi), labels)
    return space.generate(space.truncate(space.from_z(z, labels, codes), labels, psi), labels, codes)
