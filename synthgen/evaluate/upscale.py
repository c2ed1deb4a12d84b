"""The ``upscale`` metric's work: an srgan checkpoint on held-out real images, against bicubic.

The first ``num_samples`` images of the real test split (never trained on) are shrunk exactly as the upscaler's
training pairs were (``synthgen.data.pairs.downsample``), then upscaled back by the checkpoint
(``synthgen.translation.translate_rows``, the fleet's own call) and by bicubic interpolation. Both are compared with
the originals: PSNR and SSIM per image (torchmetrics, RGB or gray in [0, 1], averaged over the images), FD in judge
features against the real test split (beside the floor, a real-train subset of the same size), and the judge's
label accuracy (does an upscaled image keep its class?).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthgen.evaluate.context import EvalContext, MetricOutput

CHUNK = 64  # rows per upscaler forward: the fleet's default canonical chunk


def open_upscaler(cfg: Any, G: Any, info: Any) -> Any:
    """An upscaler checkpoint (``load_translator``'s ``G, info``) as the evaluation's Source: its run's data (the
    full-size images), no noise generator.

    """
    from synthgen.data.subset import whole_split
    from synthgen.evaluate.sources import translator_source

    return translator_source(cfg, G, info, whole_split(info.config.data), "upscaler", factor=info.factor)


def image_scores(images: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Mean per-image PSNR (dB) and SSIM of uint8 ``images`` against uint8 ``reference`` [N, C, H, W]
    (torchmetrics, on [0, 1])."""
    import torch
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0  # [N, C, H, W]
    y = torch.from_numpy(np.ascontiguousarray(reference)).float() / 255.0
    psnr = peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))  # [N]
    ssim = structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")  # [N]
    return {"psnr": float(psnr.mean()), "ssim": float(ssim.mean())}


def upscaled_and_bicubic(ctx: EvalContext, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(originals, the upscaler's, bicubic's) uint8 [n, C, H, W] for the first ``n`` real test images."""
    import torch

    from synthgen.data.pairs import downsample
    from synthgen.models.srgan import bicubic
    from synthgen.pixels import to_float, to_uint8
    from synthgen.translation import translate_rows

    G, info = ctx.source.translator
    factor = info.factor
    real = ctx.real_test.images[:n]  # [n, C, H, W] uint8
    low = downsample(real, factor)  # [n, C, H/f, W/f]: what the upscaler trained on
    labels = ctx.real_test.labels[:n]
    up = translate_rows(G, low, labels, 0, n, per_image=1, seed=0, variation="none", chunk_size=CHUNK)
    with torch.inference_mode():
        bic = to_uint8(bicubic(to_float(torch.from_numpy(low)), factor).clamp(-1, 1)).numpy()
    return real, up, bic


def upscale_quality(ctx: EvalContext) -> MetricOutput:
    """The metric's numbers for the upscaler and for bicubic (see the module docstring)."""
    from synthgen.data import stratified_subset
    from synthgen.evaluate import features as F

    n = min(int(ctx.cfg.num_samples), len(ctx.real_test))
    real, up, bic = upscaled_and_bicubic(ctx, n)
    test_features = ctx.test_features()
    anchor = stratified_subset(ctx.real_train.labels, n, ctx.cfg.seed)
    floor = F.frechet_distance(ctx.train_features()[anchor], test_features)
    labels = ctx.real_test.labels[:n]
    results: dict[str, Any] = {"factor": ctx.source.identity["factor"], "fd_floor": floor}
    for name, images in (("upscaled", up), ("bicubic", bic)):
        fd = F.frechet_distance(ctx.judge.features(images), test_features)
        pred = ctx.judge.predict_proba(images).argmax(axis=1)
        results[name] = {
            **image_scores(images, real),
            "fd": fd,
            "fd_ratio": fd / floor if floor > 0 else float("inf"),
            "label_acc": float((pred == labels).mean()),
        }
    results["psnr_gain_db"] = results["upscaled"]["psnr"] - results["bicubic"]["psnr"]
    results["real_label_acc"] = float((ctx.judge.predict_proba(real).argmax(axis=1) == labels).mean())
    settings = {"images": "first num_samples of the real test split", "features": "judge penultimate (128-d)"}
    return MetricOutput(results=results, settings=settings, counts={"real_test_images": n, "anchor": int(n)})
