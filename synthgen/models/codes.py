"""InfoGAN latent codes (Chen et al. 2016): named categorical/continuous generator inputs that D must recover.

``model.codes`` (``synthgen.config.CodeConfig``) lists them, e.g.
``[{name: thickness, kind: continuous}, {name: style, kind: categorical, size: 4}]``. A conditional
generator built with codes takes ``G(z, labels, codes)``:

    values  [N, num_codes] float: one column per code, in ``model.codes`` order; a continuous code's value
            in [-1, 1] (prior U(-1, 1)), a categorical code's value an integer in [0, size) (prior uniform)
    encoded [N, code_dim]: what G concatenates to z: the value of each continuous code, the one-hot of each
            categorical one (``encode_codes``); ``code_dim = #continuous + sum(size)``
    codes=None: the prior mean of the codes (0 for continuous, 1/size per category), so callers that know
            nothing of codes (inversion, --around, training grids) still get a deterministic image.

The discriminator's Q head (``QHead``, on D's penultimate features) predicts [N, code_dim] in the same layout:
a mean per continuous code, logits per categorical code. ``info_loss`` is the InfoGAN lower bound's negative:
cross-entropy for categorical codes, the fixed-unit-variance Gaussian NLL ``0.5 * (mean - value)^2`` for
continuous ones, summed over codes and averaged over the batch.

The auxiliary classifier (``model.aux_weight`` > 0; AC-GAN, Odena et al. 2017) shares the Q head: it gets
``num_classes`` more outputs after the codes' columns, class logits that D learns on real images and G is
scored by on its fakes (``aux_loss``). It is the class seen as one more factor D must recover, but supervised
by the real labels, so it also brings the classification task into G's training.

Pure tensor code: no I/O, no Ray; the config layer sits above and duck-types its ``CodeConfig`` in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthgen.errors import ConfigError

CODE_KINDS = ("continuous", "categorical")
CONTINUOUS_SWEEP = 7  # columns of a continuous code's report grid: evenly spaced values from -1 to 1
Q_HIDDEN = 128  # width of the Q head's hidden layer
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CodeSpec(Protocol):
    """What the models read from one code (``synthgen.config.CodeConfig`` is one)."""

    name: str  # the code's name (``--code NAME=VALUE``)
    kind: str  # continuous | categorical
    size: int  # categories of a categorical code; 0 for continuous


def check_codes(codes: Sequence[Any], model_name: str, able: Sequence[str]) -> None:
    """Validate ``model.codes`` for model ``model_name``.

    Args:
        codes: the ``model.codes`` entries (name, kind, size).
        model_name: ``model.name``.
        able: the registered models that take codes (``ModelSpec.codes``).

    Raises:
        ConfigError: codes on a model without code support, or a bad name, kind or size (naming the fix).
    """
    if not codes:
        return
    if model_name not in able:
        raise ConfigError(
            f"model.codes is set but model.name={model_name!r} has no InfoGAN codes (only the "
            f"conditional models {able} do): set model.codes=[] or choose one of {able}"
        )
    seen: set[str] = set()
    for i, c in enumerate(codes):
        where = f"model.codes[{i}]"
        if not _NAME_RE.match(c.name or ""):
            raise ConfigError(
                f"{where}.name={c.name!r} is invalid: use a name of letters, digits and _, "
                "e.g. {name: thickness, kind: continuous}"
            )
        if c.name in seen:
            raise ConfigError(f"{where}.name={c.name!r} is used twice: give every code its own name")
        seen.add(c.name)
        if c.kind not in CODE_KINDS:
            raise ConfigError(
                f"{where}.kind={c.kind!r} is invalid: choose one of {list(CODE_KINDS)}, "
                "e.g. {name: style, kind: categorical, size: 4}"
            )
        if c.kind == "categorical" and c.size < 2:
            raise ConfigError(
                f"{where}.size={c.size!r} is invalid: a categorical code needs >= 2 values, "
                f"e.g. {{name: {c.name}, kind: categorical, size: 4}}"
            )
        if c.kind == "continuous" and c.size != 0:
            raise ConfigError(
                f"{where}.size={c.size!r} is invalid: a continuous code has no size (it is one "
                f"number in [-1, 1]); drop size or set kind: categorical"
            )


def check_q_head(model_name: str, able: Sequence[str], codes: Sequence[Any], aux_weight: float) -> None:
    """Validate what D's Q head is asked to predict: ``model.codes`` and the auxiliary classifier.

    Args:
        model_name: ``model.name``.
        able: the registered models whose D has a Q head (``ModelSpec.codes``).
        codes: the ``model.codes`` entries.
        aux_weight: ``model.aux_weight`` (> 0 asks for class logits).

    Raises:
        ConfigError: either on a model without a Q head, or a bad code (naming the key and the fix).
    """
    check_codes(codes, model_name, able)
    if aux_weight > 0.0 and model_name not in able:
        raise ConfigError(
            f"model.aux_weight is set but model.name={model_name!r} has no auxiliary classifier "
            f"(only the conditional models {list(able)} do): set model.aux_weight=0 or choose one "
            f"of {list(able)}"
        )


def aux_loss(class_logits: Tensor, labels: Tensor) -> Tensor:
    """The auxiliary classifier's loss: cross-entropy of ``class_logits`` [N, K] for ``labels`` [N] (batch mean)."""
    return F.cross_entropy(class_logits.float(), labels)


def code_dim(codes: Sequence[Any]) -> int:
    """Width of the encoded codes: 1 per continuous code, ``size`` per categorical one."""
    return sum(c.size if c.kind == "categorical" else 1 for c in codes)


def code_slices(codes: Sequence[Any]) -> list[slice]:
    """Each code's columns in the encoded layout (and in the Q head's output)."""
    out, start = [], 0
    for c in codes:
        width = c.size if c.kind == "categorical" else 1
        out.append(slice(start, start + width))
        start += width
    return out


def code_sizes(codes: Sequence[Any]) -> list[int]:
    """Per code: its number of categories, 0 for a continuous code (``synthgen.draws.codes_for``)."""
    return [c.size if c.kind == "categorical" else 0 for c in codes]


def encode_codes(codes: Sequence[Any], values: Tensor | None, n: int, like: Tensor) -> Tensor:
    """Code values to G's input layout.

    Args:
        codes: the code specs.
        values: [N, num_codes] values (see the module docstring), or None for the prior mean.
        n: batch size N (used when ``values`` is None).
        like: a tensor whose device and dtype the result takes (e.g. z).

    Returns:
        [N, code_dim].
    """
    if values is None:  # the prior mean: 0 for continuous codes, a uniform 1/size for categorical ones
        parts = [torch.full((n, c.size), 1.0 / c.size) if c.kind == "categorical" else torch.zeros(n, 1) for c in codes]
        return torch.cat(parts, dim=1).to(device=like.device, dtype=like.dtype)  # [N, code_dim]
    if values.shape != (n, len(codes)):
        raise ValueError(f"codes must be [N, {len(codes)}] values (one column per code), got {tuple(values.shape)}")
    parts = [
        F.one_hot(values[:, k].round().long().clamp(0, c.size - 1), c.size).to(like.dtype)
        if c.kind == "categorical"
        else values[:, k : k + 1].to(like.dtype)
        for k, c in enumerate(codes)
    ]
    return torch.cat(parts, dim=1)  # [N, code_dim]


def sample_code_values(codes: Sequence[Any], n: int, device: torch.device | str) -> Tensor:
    """Prior draws [N, num_codes] from torch's global RNG (training): U(-1, 1) or a uniform category."""
    cols = [
        torch.randint(c.size, (n,), device=device).float()
        if c.kind == "categorical"
        else torch.rand(n, device=device) * 2.0 - 1.0
        for c in codes
    ]
    return torch.stack(cols, dim=1)  # [N, num_codes]


def info_loss(codes: Sequence[Any], q: Tensor, values: Tensor) -> Tensor:
    """InfoGAN's mutual-information term (to minimise) from Q's output and the codes G was given.

    Args:
        codes: the code specs.
        q: [N, code_dim] Q head output (logits / means), float32.
        values: [N, num_codes] the code values the images were generated with.

    Returns:
        Scalar: sum over codes of the batch-mean CE (categorical) or ``0.5 * (mean - value)^2`` (continuous).
    """
    total = q.new_zeros(())
    for k, (c, cols) in enumerate(zip(codes, code_slices(codes))):
        if c.kind == "categorical":
            total = total + F.cross_entropy(q[:, cols], values[:, k].round().long())
        else:
            total = total + 0.5 * (q[:, cols].squeeze(1) - values[:, k]).pow(2).mean()
    return total


def sweep_values(code: Any) -> list[float]:
    """The values a report grid shows for ``code``: each category, or CONTINUOUS_SWEEP values in [-1, 1]."""
    if code.kind == "categorical":
        return [float(v) for v in range(code.size)]
    return [-1.0 + 2.0 * i / (CONTINUOUS_SWEEP - 1) for i in range(CONTINUOUS_SWEEP)]


def check_code_value(code: Any, value: float) -> None:
    """Refuse a value outside a code's prior support.

    Raises:
        ConfigError: naming the code, the value and the allowed range.
    """
    if code.kind == "categorical":
        if value != int(value) or not 0 <= value < code.size:
            raise ConfigError(
                f"--code {code.name}={value:g} is invalid: {code.name} is categorical, choose an "
                f"integer in [0, {code.size}), e.g. --code {code.name}=0"
            )
    elif not -1.0 <= value <= 1.0:
        raise ConfigError(
            f"--code {code.name}={value:g} is invalid: {code.name} is continuous, choose a value in "
            f"[-1, 1] (its prior's support), e.g. --code {code.name}=0.5"
        )


class QHead(nn.Module):
    """InfoGAN's Q: a small MLP from D's penultimate features [N, F] to code predictions [N, code_dim]."""

    def __init__(self, feature_dim: int, out_dim: int, hidden: int = Q_HIDDEN) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(feature_dim, hidden), nn.LeakyReLU(0.1), nn.Linear(hidden, out_dim))

    def forward(self, phi: Tensor) -> Tensor:
        return self.net(phi)  # [N, F] -> [N, code_dim]
