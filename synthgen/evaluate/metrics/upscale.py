"""Upscale: an srgan checkpoint on held-out real images against bicubic (PSNR, SSIM, FD, label accuracy).

The work is in ``synthgen.evaluate.upscale``; this module registers the metric and says how its rows read.
"""

from __future__ import annotations

from typing import Any

from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, ReportLine, fmt


def compute(ctx: EvalContext) -> MetricOutput:
    from synthgen.evaluate.upscale import upscale_quality  # torch, torchmetrics and the upscaler: when it runs

    return upscale_quality(ctx)


def summary(r: dict[str, Any], settings: dict[str, Any]) -> list[ReportLine]:
    up, bic, x = r["upscaled"], r["bicubic"], f"x{r['factor']}"
    return [
        ReportLine(
            f"upscale {x}: PSNR (dB)",
            fmt(up["psnr"]),
            f"bicubic {fmt(bic['psnr'])}",
            f"{r['psnr_gain_db']:+.2f} dB over bicubic",
        ),
        ReportLine(f"upscale {x}: SSIM", fmt(up["ssim"]), f"bicubic {fmt(bic['ssim'])}", "1 = identical"),
        ReportLine(
            f"upscale {x}: FD (judge features)",
            fmt(up["fd"]),
            f"bicubic {fmt(bic['fd'])}",
            f"ratio {fmt(up['fd_ratio'], 3)} vs bicubic {fmt(bic['fd_ratio'], 3)} (1 = real)",
        ),
        ReportLine(
            f"upscale {x}: label accuracy (judge)",
            fmt(up["label_acc"]),
            f"bicubic {fmt(bic['label_acc'])}",
            f"real images {fmt(r['real_label_acc'])}",
        ),
    ]


METRIC = Metric(
    name="upscale",
    order=66,  # never in one run with the others (`--metrics all` runs those that fit the checkpoint)
    compute=compute,
    summary=summary,
    measures="upscaler",
    description="an srgan checkpoint on held-out real images vs bicubic: PSNR, SSIM, FD, label accuracy",
    details="""--num-samples real test images (default 10000) are shrunk by the checkpoint's factor as its
training pairs were, then upscaled by it and by bicubic; PSNR / SSIM (torchmetrics) against the originals,
FD in judge features against the real test split, the judge's label accuracy.""",
)
