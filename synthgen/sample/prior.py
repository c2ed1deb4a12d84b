"""The one path from a prior sample to its pixels: (seed, id, candidate) -> latent and InfoGAN codes -> image.

``latents_for`` and ``codes_for`` (``synthgen.draws``, counter-based) give sample ``i``'s z and code
values, ``--code`` values replace the drawn ones, and ``images_from_z`` (``synthgen.models.latent``) maps them
through the generator's own latent space, truncated there. The sampling fleet, judge filtering, the
evaluation's generated sources and the report's code grids all call ``prior_images``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthgen.draws import codes_for, latents_for
from synthgen.errors import ConfigError

if TYPE_CHECKING:  # torch is imported inside the functions: plans and configs must not pay for it
    import torch
    from torch import nn


def prior_codes(
    generator: nn.Module,
    ids: np.ndarray,
    seed: int,
    candidate: int = 0,
    fixed_codes: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor | None:
    """InfoGAN code values [n, num_codes] of prior samples ``ids``, or None for a generator without codes.

    Args:
        generator: any registered generator (its ``codes`` attribute lists its codes; absent = none).
        ids: int64 [n] sample ids.
        seed, candidate: as in ``codes_for``.
        fixed_codes: {code name: value, or float [n] values per row} replacing the drawn values (``--code``).
        device: where the result goes.

    Raises:
        ConfigError: a fixed code the generator does not have.
    """
    import torch

    from synthgen.models.codes import code_sizes

    specs = tuple(getattr(generator, "codes", ()))
    names = [c.name for c in specs]
    unknown = sorted(set(fixed_codes or {}) - set(names))
    if unknown:
        raise ConfigError(
            f"--code {unknown[0]}=...: the generator has no code {unknown[0]!r}; its codes are "
            f"{names or 'none (train with model.codes to get some)'}"
        )
    if not specs:
        return None
    values = codes_for(ids, seed, code_sizes(specs), candidate)  # [n, num_codes]
    for name, value in (fixed_codes or {}).items():
        values[:, names.index(name)] = value
    return torch.from_numpy(values).to(device)


def prior_images(
    generator: nn.Module,
    ids: np.ndarray,
    labels: torch.Tensor,
    seed: int,
    *,
    truncation: float = 1.0,
    candidate: int = 0,
    fixed_codes: dict[str, Any] | None = None,
    space: Any = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Images of prior samples ``ids``: a pure function of (weights, seed, id, candidate, label, codes fixed).

    Args:
        generator: any registered generator (eval mode).
        ids: int64 [n] sample ids.
        labels: int64 [n] their labels, on ``device``.
        seed, candidate: as in ``latents_for`` / ``codes_for``.
        truncation: psi in (0, 1], in the generator's latent space (``images_from_z``); 1.0 = off.
        fixed_codes: ``--code`` values (see ``prior_codes``).
        space: ``latent_space(generator)`` to reuse (W caches class statistics); None = make one.
        device: where the generator runs.

    Returns:
        float [n, C, H, W] in [-1, 1] on ``device``.
    """
    import torch

    from synthgen.models.latent import images_from_z, latent_space

    space = space if space is not None else latent_space(generator)
    z = torch.from_numpy(latents_for(ids, seed, int(generator.z_dim), candidate=candidate)).to(device)  # [n, z_dim]
    codes = prior_codes(generator, ids, seed, candidate, fixed_codes, device)  # [n, num_codes] or None
    return images_from_z(space, z, labels, truncation, codes)
