"""Layers of the ``stylegan`` model (StyleGAN2, Karras et al. 2020): equalized learning rate, modulated
convolution, noise inputs, toRGB, the mapping network, residual D blocks and minibatch stddev.

Equalized learning rate: weights are stored as N(0, 1) / ``lr_mul`` and multiplied by
``lr_mul / sqrt(fan_in)`` in every forward, so every layer's update size under Adam is the same relative to
its weights, and ``lr_mul`` < 1 slows one part (the mapping network: 0.01) without a second optimiser.
Leaky ReLUs are followed by a gain of sqrt(2) (StyleGAN's ``bias_act``) so activations keep unit variance.

Up/down-sampling is bilinear interpolation / 2x2 average pooling: bilinear x2 is exactly StyleGAN2's
[1, 3, 3, 1] FIR upsampling filter, and average pooling is its cheapest anti-aliased downsampler.
No batch norm anywhere: in G each sample depends only on its own (z, y, noise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthgen.models.blocks import require_labels
from synthgen.models.codes import code_dim, encode_codes

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # keeps the activations' second moment through a leaky ReLU
EPS = 1e-8


def lrelu(x: Tensor) -> Tensor:
    """Leaky ReLU (slope 0.2) with StyleGAN's gain sqrt(2)."""
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


def normalize_2nd_moment(x: Tensor) -> Tensor:
    """Scale each row of ``x`` [N, F] to unit mean square (StyleGAN's input normalisation of z and the class)."""
    return x * (x.square().mean(dim=1, keepdim=True) + EPS).rsqrt()


def upsample2x(x: Tensor) -> Tensor:
    """Bilinear x2 upsampling of [N, C, H, W] -> [N, C, 2H, 2W] (StyleGAN2's [1, 3, 3, 1] filter)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate, optional lrelu and learning-rate multiplier."""

    def __init__(
        self, in_features: int, out_features: int, activation: bool = False, lr_mul: float = 1.0, bias_init: float = 0.0
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)  # [O, I]
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))  # [O]
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain, self.activation = lr_mul, activation

    def forward(self, x: Tensor) -> Tensor:
        # x: [N, I] -> [N, O]
        out = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return lrelu(out) if self.activation else out


class EqualConv2d(nn.Module):
    """Conv2d (stride 1, 'same' padding) with equalized learning rate, optional bias and lrelu (D's layers)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True, activation: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))  # [O, I, k, k]
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.padding, self.activation = kernel // 2, activation

    def forward(self, x: Tensor) -> Tensor:
        # x: [N, I, H, W] -> [N, O, H, W]
        out = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        return lrelu(out) if self.activation else out


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool, fused: bool) -> Tensor:
    """StyleGAN2's modulated convolution: each sample's input channels scaled by its styles.

    Two mathematically equal forms, as in StyleGAN2-ADA: ``fused`` builds each sample's own weight and runs one
    grouped conv (one group per sample: the sampling path); otherwise the input is scaled, one shared conv
    runs over the batch and the output is rescaled (cheaper backward: the training path).

    Args:
        x: [N, I, H, W] input.
        weight: [O, I, k, k] shared weight (gain already applied).
        styles: [N, I] per-sample input-channel scales.
        demodulate: rescale every sample's output channels to unit expected variance (StyleGAN2's
            replacement of AdaIN, which removes the droplet artefacts).
        fused: use the grouped-conv form.

    Returns:
        [N, O, H, W] ('same' padding).
    """
    n, i, h, w_ = x.shape
    o, _, k, _ = weight.shape
    dcoefs = None
    if demodulate:
        # ||W_o * s||^2 over (i, k, k) = sum_i s_i^2 * sum_kk W_oi^2, without the [N, O, I, k, k] tensor
        dcoefs = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + EPS).rsqrt()  # [N, O]
    if not fused:
        out = F.conv2d(x * styles[:, :, None, None], weight, padding=k // 2)  # [N, O, H, W]
        return out * dcoefs[:, :, None, None] if dcoefs is not None else out
    wts = weight[None] * styles[:, None, :, None, None]  # [N, O, I, k, k]
    if dcoefs is not None:
        wts = wts * dcoefs[:, :, None, None, None]
    # One group per sample: sample j's input channels only meet sample j's weights.
    out = F.conv2d(x.reshape(1, n * i, h, w_), wts.reshape(n * o, i, k, k), padding=k // 2, groups=n)
    return out.reshape(n, o, h, w_)  # [N, O, H, W]


class StyleConv(nn.Module):
    """Modulated 3x3 conv (optionally after x2 upsampling) + per-pixel noise + bias + lrelu.

    Noise: in training mode fresh N(0, 1) noise per sample and call; in eval mode the fixed buffer
    ``noise_const`` (StyleGAN's noise_mode='const'), so sampling is a pure function of (weights, z, y).
    The buffer is part of the state dict: a checkpoint reproduces the same images. ``noise_strength``
    starts at 0 (as in StyleGAN2): the network learns how much stochastic detail to use.
    """

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, up: bool) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)  # styles start at 1: an unmodulated conv
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 3, 3))  # [O, I, 3, 3]
        self.weight_gain = 1.0 / math.sqrt(in_ch * 9)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))  # [1, 1, R, R]
        self.up, self.resolution = up, resolution

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        # x: [N, I, R/2 or R, ...], w: [N, w_dim] -> [N, O, R, R]
        if self.up:
            x = upsample2x(x)  # [N, I, R, R]
        styles = self.affine(w)  # [N, I]
        x = modulated_conv2d(
            x, self.weight * self.weight_gain, styles, demodulate=True, fused=not self.training
        )  # [N, O, R, R]
        if self.training:
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)  # [1, 1, R, R], the same for every sample
        x = x + noise * self.noise_strength
        return lrelu(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv (no demodulation) from features to image channels: one skip output."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 1, 1))  # [C, I, 1, 1]
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.weight_gain = 1.0 / math.sqrt(in_ch)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        # x: [N, I, R, R] -> [N, C, R, R]
        styles = self.affine(w) * self.weight_gain  # [N, I]
        out = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=not self.training)
        return out + self.bias[None, :, None, None]


class MappingNetwork(nn.Module):
    """(z, class) -> w: StyleGAN2-ADA's conditional mapping.

    ``w = MLP([norm(z), norm(embed(y))])`` with ``layers`` lrelu FC layers of width ``w_dim`` and learning
    rate multiplier ``lr_mul``; both inputs are normalised to unit mean square so neither dominates.
    With InfoGAN ``codes`` (``synthgen.models.codes``) their encoding [N, code_dim] joins the input
    un-normalised: ``[norm(z), encode(codes), norm(embed(y))]``; code values None = their prior mean.
    With ``fade`` the class part is scaled by the buffer ``cond_strength`` (the training step sets it; 0 makes
    w independent of the class), saved with the weights so a checkpoint samples as it was trained.
    """

    def __init__(
        self,
        z_dim: int,
        num_classes: int,
        w_dim: int,
        layers: int,
        lr_mul: float,
        codes: Sequence[Any] = (),
        fade: bool = False,
    ) -> None:
        super().__init__()
        self.codes, self.code_dim = tuple(codes), code_dim(codes)
        self.embed = EqualLinear(num_classes, w_dim)  # on one-hot labels = a learned class embedding
        dims = [z_dim + self.code_dim + w_dim] + [w_dim] * layers
        self.fcs = nn.ModuleList(
            EqualLinear(dims[i], dims[i + 1], activation=True, lr_mul=lr_mul) for i in range(layers)
        )
        self.num_classes = num_classes
        # None (no state_dict entry) without the option, so checkpoints of models without it keep their keys
        self.register_buffer("cond_strength", torch.ones(()) if fade else None)

    def forward(self, z: Tensor, labels: Tensor | None = None, codes: Tensor | None = None) -> Tensor:
        # z: [N, z_dim], labels: [N], codes: [N, num_codes] values or None -> w [N, w_dim]
        labels = require_labels(labels, z.shape[0])
        onehot = F.one_hot(labels, self.num_classes).to(z.dtype)  # [N, K]
        parts = [normalize_2nd_moment(z)]
        if self.code_dim:
            parts.append(encode_codes(self.codes, codes, z.shape[0], z))  # [N, code_dim]
        cls = normalize_2nd_moment(self.embed(onehot))  # [N, w_dim]
        if self.cond_strength is not None:
            cls = cls * self.cond_strength
        x = torch.cat([*parts, cls], dim=1)
        for fc in self.fcs:
            x = fc(x)
        return x


class DBlock(nn.Module):
    """Residual discriminator block (StyleGAN2 'resnet'): R -> R/2, (skip + main) / sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False, activation=False)

    def forward(self, x: Tensor) -> Tensor:
        # x: [N, I, R, R] -> [N, O, R/2, R/2]
        skip = self.skip(F.avg_pool2d(x, 2))
        # pooling before the second conv runs it at R/2: a quarter of the multiply-adds of pooling after
        main = self.conv1(F.avg_pool2d(self.conv0(x), 2))
        return (skip + main) * math.sqrt(0.5)  # keeps unit variance of the sum


def _largest_divisor(n: int, cap: int) -> int:
    """The largest divisor of ``n`` that is <= ``cap`` (1 when n is 0 or 1): the mbstd group / chunk size."""
    return max(d for d in range(1, min(cap, n) + 1) if n % d == 0) if n > 1 else 1


def minibatch_stddev(x: Tensor, group_size: int) -> Tensor:
    """Append one feature map: the mean std over each group of consecutive samples (StyleGAN's mbstd).

    Groups are runs of consecutive samples (StyleGAN strides them instead), so a batch that concatenates
    a real and a fake half keeps the two apart whenever the half size is a multiple of the group size:
    D then compares the diversity of fakes with that of reals, which is the point of the layer.
    The group is the largest divisor of N that is <= ``group_size`` (1 for a single sample).

    Args:
        x: [N, C, H, W] features.
        group_size: the largest group to use.

    Returns:
        [N, C + 1, H, W].
    """
    n, c, h, w = x.shape
    g = _largest_divisor(n, group_size)
    y = x.reshape(n // g, g, c, h, w).float()  # [M, G, C, H, W]
    y = (y.var(dim=1, unbiased=False) + EPS).sqrt()  # [M, C, H, W]
    y = y.mean(dim=(1, 2, 3)).to(x.dtype)  # [M]
    y = y.repeat_interleave(g)[:, None, None, None].expand(n, 1, h, w)  # [N, 1, H, W]
    return torch.cat([x, y], dim=1)


def class_minibatch_stddev(x: Tensor, labels: Tensor, num_classes: int, chunk_size: int) -> Tensor:
    """Append one feature map: the std over the samples of the same class in the same chunk (a conditional mbstd).

    Plain minibatch stddev compares samples of mixed classes, so its statistic is dominated by the
    differences between classes and cannot see a generator that draws every image of one class alike.
    Here each sample gets the mean std of its own class's samples in its chunk of ``chunk_size``
    consecutive samples (the real and fake halves of the train step are separate chunks whenever the
    half size is a multiple of the chunk size). A class met once in a chunk gets ~0 for real and fake alike.

    Args:
        x: [N, C, H, W] features.
        labels: [N] int64 class labels.
        num_classes: number of classes (labels are < it).
        chunk_size: the largest chunk to use (the chunk is the largest divisor of N that is <= it).

    Returns:
        [N, C + 1, H, W].
    """
    n, c, h, w = x.shape
    s = _largest_divisor(n, chunk_size)
    key = (torch.arange(n, device=x.device) // s) * num_classes + labels  # [N]: one id per (chunk, class)
    onehot = F.one_hot(key, (n // s) * num_classes).to(torch.float32)  # [N, M]
    flat = x.reshape(n, -1).float()  # [N, F]
    count = onehot.sum(dim=0).clamp(min=1.0)[:, None]  # [M, 1]
    mean = onehot.t() @ flat / count  # [M, F]
    var = (onehot.t() @ flat.square() / count - mean.square()).clamp(min=0.0)  # [M, F]
    stat = (var + EPS).sqrt().mean(dim=1)  # [M]
    y = stat[key].to(x.dtype)[:, None, None, None].expand(n, 1, h, w)  # [N, 1, H, W]
    return torch.cat([x, y], dim=1)
