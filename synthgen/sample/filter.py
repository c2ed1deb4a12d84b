"""Judge filtering: keep only generated images that the judge assigns to the label they were made for.

``synthgen sample ... --filter judge:0.9`` (and ``synthgen evaluate --set filter=judge:0.9``) turn
sampling into deterministic rejection sampling. Sample ``i`` (label ``y``) tries its candidate latents
``c = 0, 1, 2, ...`` (``latents_for(..., candidate=c)``; candidate 0 is the unfiltered latent) and keeps
the first image whose judge probability ``p(y | image) >= threshold``. When ``max_candidates`` are all
rejected it keeps the best-scoring one (counted as ``below_threshold`` in the manifest), so the label
of every sample and the per-class counts stay exact.

Why it is still deterministic: the judge scores the stored uint8 pixels, and each round runs the
generator and the judge on the still-rejected rows of a fixed id range (the CPU actors' canonical
chunks), a set that is itself a function of that range. So image ``i`` depends only on (checkpoint,
seed, filter, judge weights, ``i``), not on actors, batch sizes or retries.

Each candidate's image comes from the one prior path, ``synthgen.sample.prior.prior_images``.

The judge (``synthgen.judge``, shared with the evaluation stage) is a classifier trained on the real
training split of the checkpoint's data, cached per data set. Metrics measured in that same judge's
eyes (label_acc, fd, pr, dc) flatter a filtered set; CAS and uplift train fresh classifiers and test
them on real images, so they remain honest measures of what filtering is worth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthgen.errors import ConfigError
from synthgen.sample.prior import prior_images

if TYPE_CHECKING:  # torch is imported inside the functions: plans and configs must not pay for it
    import torch
    from torch import nn

DEFAULT_MAX_CANDIDATES = 16  # candidate latents tried per sample before the best one is kept


def judge_spec(judge: Any) -> dict[str, Any]:
    """What an actor needs to rebuild a judge's classifier: {"arch", "state", "key"} (plain tensors)."""
    model = judge.model
    return {
        "arch": model.arch,
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "key": judge.key,
    }


def build_judge_model(spec: dict[str, Any], device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild the judge classifier from :func:`judge_spec` output, in eval mode on ``device``."""
    from synthgen.models.classifier import SmallCNN

    model = SmallCNN.from_arch(spec["arch"])
    model.load_state_dict(spec["state"])
    return model.to(device).eval()


def generate_filtered(
    generator: nn.Module,
    judge_model: nn.Module,
    ids: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    threshold: float,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    truncation: float = 1.0,
    device: torch.device | str = "cpu",
    fixed_codes: dict[str, Any] | None = None,
    space: Any = None,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Images of sample ``ids`` with ``labels``, each the first candidate the judge accepts.

    Args:
        generator: conditional generator (eval mode), ``generator(z, y)`` in [-1, 1].
        judge_model: judge classifier from :func:`build_judge_model`, on ``device``.
        ids, labels: int64 [n] sample ids and their labels.
        seed: as in ``latents_for``.
        truncation: psi in (0, 1], applied in the generator's latent space (``images_from_z``); 1.0 = off.
        threshold: minimum judge probability of the requested label.
        max_candidates: candidates tried per sample; the best one is kept when none passes.
        device: where the generator and judge run.
        fixed_codes: ``--code`` values fixed for every candidate (``prior_codes``).
        space: ``latent_space(generator)`` to reuse across calls (W caches class statistics); None = make one.

    Returns:
        (images uint8 [n, C, H, W] on the CPU, candidates int64 [n] = candidates drawn per sample,
        probability float32 [n] = the judge's probability of the label for the kept image).

    Raises:
        ConfigError: max_candidates < 1.
    """
    import torch

    from synthgen.judge.classifier import label_probability
    from synthgen.models.latent import latent_space
    from synthgen.pixels import to_uint8

    if max_candidates < 1:
        raise ConfigError(f"filter max_candidates={max_candidates} is invalid: must be >= 1, e.g. 16")
    ids = np.asarray(ids, dtype=np.int64)
    with torch.inference_mode():
        space = space if space is not None else latent_space(generator)
        y_all = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)  # [n]
        n = len(ids)
        if n == 0:
            c, h, w = generator.image_shape
            return torch.zeros((0, c, h, w), dtype=torch.uint8), np.zeros(0, np.int64), np.zeros(0, np.float32)
        best_img: torch.Tensor | None = None  # [n, C, H, W] uint8
        best_p = torch.full((n,), -1.0, device=device)  # [n]
        drawn = np.zeros(n, dtype=np.int64)
        pending = np.arange(n)  # rows still without an accepted image
        for candidate in range(max_candidates):
            if len(pending) == 0:
                break
            y = y_all[pending]  # [m]
            img = to_uint8(
                prior_images(
                    generator,
                    ids[pending],
                    y,
                    seed,
                    truncation=truncation,
                    candidate=candidate,
                    fixed_codes=_rows(fixed_codes, pending),
                    space=space,
                    device=device,
                )
            )  # [m, C, H, W]
            p = label_probability(judge_model, img, y)  # [m]
            if best_img is None:
                best_img = torch.zeros((n, *img.shape[1:]), dtype=torch.uint8, device=device)
            rows = torch.from_numpy(pending).to(device)
            better = p > best_p[rows]  # strictly better: ties keep the earlier candidate
            best_img[rows[better]] = img[better]
            best_p[rows[better]] = p[better]
            drawn[pending] += 1
            accepted = (p >= threshold).cpu().numpy()
            pending = pending[~accepted]
        assert best_img is not None  # n > 0 and max_candidates >= 1: the loop ran at least once
        return best_img.cpu(), drawn, best_p.float().cpu().numpy()


def _rows(fixed_codes: dict[str, Any] | None, rows: np.ndarray) -> dict[str, Any] | None:
    """``fixed_codes`` restricted to ``rows`` (per-row value arrays are indexed; scalars stay)."""
    if not fixed_codes:
        return fixed_codes
    return {k: (np.asarray(v)[rows] if np.ndim(v) else v) for k, v in fixed_codes.items()}
