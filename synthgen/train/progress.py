"""Progress output of a training run (rank 0): log lines, metrics.jsonl rows, per-class sample grids,
and the same loss curves and grids as TensorBoard event files.

    <run folder>/metrics.jsonl              one JSON row per log step (step, d_loss, g_loss, img_per_s, ...)
    <run folder>/grids/grid-NNNNNN.png      one row of samples per class, fixed latents
    <run folder>/tensorboard/events.out.*   scalars d_loss, g_loss, img_per_s; image "samples"
                                            (tensorboard --logdir <run folder>)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from synthgen.log import get_logger
from synthgen.pixels import to_uint8
from synthgen.storage import atomic_write_text, copy_local_tree

METRICS_FILE = "metrics.jsonl"
TIMING_FILE = "timing.json"
TENSORBOARD_DIR = "tensorboard"
GRID_TAG = "samples"  # TensorBoard image tag of the per-class grids


def record_timing(run_dir: str, **times: float) -> None:
    """Merge ``times`` (start-up phases: name -> ``time.time()``) into ``<run_dir>/timing.json``, atomically.

    The driver writes its phases (launch, Ray ready, fit) before the workers start; rank 0 adds its own when the
    first step is done. A worker whose run folder is on another node starts a file of its own there.
    """
    path = os.path.join(run_dir, TIMING_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            timing = json.load(fh)
    except (OSError, ValueError):
        timing = {}
    timing.update(times)
    atomic_write_text(path, json.dumps(timing))


class ProgressLog:
    """Rank 0's log: per ``record`` a log line, a JSON row in ``<run_dir>/metrics.jsonl`` and TensorBoard
    scalars; per ``save_grid`` a PNG in ``<run_dir>/grids/`` and a TensorBoard image."""

    def __init__(
        self, run_dir: str, total_steps: int, global_batch: int, time_left: Callable[[], float] | None = None
    ) -> None:
        self.run_dir = run_dir
        self.time_left = time_left  # seconds left of train.max_minutes (inf = none): caps the shown eta
        self.path = os.path.join(run_dir, METRICS_FILE)
        self.total_steps = total_steps
        self.global_batch = global_batch
        self._t0 = time.perf_counter()
        self._last_time = self._t0
        self._last_step: int | None = None
        self._resumed_at = 0  # checkpoint step this attempt continues from (0 = a fresh run)
        self._writer: Any = None  # SummaryWriter, opened on first use (after truncate_after)

    def truncate_after(self, step: int) -> None:
        """Drop rows past ``step`` (written after the checkpoint a resumed run restarts from).

        TensorBoard's events of those steps are purged too, when the writer opens (``purge_step``).
        """
        self._last_step = step
        self._resumed_at = step
        if not os.path.exists(self.path):
            return
        with open(self.path, encoding="utf-8") as fh:
            rows = [line for line in fh if line.strip() and json.loads(line).get("step", 0) <= step]
        atomic_write_text(self.path, "".join(rows))

    def mark_first_step(self, step: int, **phases: float) -> None:
        """Add the wall time of the first step (and the worker's earlier ``phases``: name -> ``time.time()``) to
        ``timing.json`` (launch-to-first-step benchmarks)."""
        record_timing(os.path.dirname(self.path), first_step=step, first_step_time=time.time(), **phases)

    def tensorboard(self) -> Any:
        """The run's ``SummaryWriter`` on ``<run_dir>/tensorboard``, opened once.

        A resumed attempt (after ``truncate_after(step)``) opens it with ``purge_step=step + 1``: the
        crashed attempt's events after the checkpoint are hidden, so each step appears once.
        """
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            purge = self._resumed_at + 1 if self._resumed_at > 0 else None
            self._writer = SummaryWriter(os.path.join(self.run_dir, TENSORBOARD_DIR), purge_step=purge)
        return self._writer

    def close(self) -> None:
        """Flush and close the TensorBoard writer (records after this reopen it)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def record(self, step: int, **values: float) -> dict:
        """Log a progress line, append a metrics row and TensorBoard scalars for ``step``; return the row."""
        now = time.perf_counter()
        steps_done = step - (self._last_step if self._last_step is not None else 0)
        img_per_s = steps_done * self.global_batch / max(now - self._last_time, 1e-9)
        self._last_time, self._last_step = now, step
        eta_s = (self.total_steps - step) * self.global_batch / max(img_per_s, 1e-9)
        if self.time_left is not None:
            eta_s = min(eta_s, self.time_left())
        row = {
            "step": step,
            **{k: round(float(v), 5) for k, v in values.items()},
            "img_per_s": round(img_per_s, 1),
            "elapsed_s": round(now - self._t0, 1),
            "time": time.time(),
        }
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        writer = self.tensorboard()
        for key, value in values.items():
            writer.add_scalar(key, float(value), step)
        writer.add_scalar("img_per_s", row["img_per_s"], step)
        writer.flush()  # a killed worker must not lose the curve up to its last log line
        losses = " | ".join(f"{k} {v:.4f}" for k, v in values.items())
        get_logger().info(
            f"step {step:>6}/{self.total_steps} | {img_per_s:7.0f} img/s | {losses} | eta {eta_s / 60:5.1f} min"
        )
        return row

    def save_grid(self, step: int, generator: nn.Module, z: torch.Tensor, labels: torch.Tensor, cols: int) -> str:
        """Write ``<run_dir>/grids/grid-NNNNNN.png`` (one row per class) and the same image to TensorBoard.

        Returns:
            The PNG's path.
        """
        path = os.path.join(self.run_dir, "grids", f"grid-{step:06d}.png")
        return self._save(step, path, save_grid(generator, z, labels, cols, path))

    def save_image_rows(self, step: int, rows: list[torch.Tensor]) -> str:
        """Write ``grids/grid-NNNNNN.png`` and the TensorBoard image from ``rows`` of images [k, C, H, W] in [-1, 1]
        (one grid row each, e.g. a translation model's inputs, outputs and targets).

        Returns:
            The PNG's path.
        """
        path = os.path.join(self.run_dir, "grids", f"grid-{step:06d}.png")
        cols = rows[0].shape[0]
        image = _canvas(to_uint8(torch.cat(rows).float()).cpu().numpy(), cols)
        _write_png(image, path)
        return self._save(step, path, image)

    def _save(self, step: int, path: str, image: Image.Image) -> str:
        pixels = np.asarray(image)  # [H, W] (grayscale) or [H, W, C] uint8
        writer = self.tensorboard()
        writer.add_image(GRID_TAG, pixels, step, dataformats="HW" if pixels.ndim == 2 else "HWC")
        writer.flush()
        return path


@torch.no_grad()
def render_grid(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor, cols: int) -> Image.Image:
    """Draw one row per class: ``z`` [K*cols, z_dim], ``labels`` [K*cols] -> a PIL image grid."""
    was_training = generator.training
    generator.eval()
    images = generator(z, labels).float()  # [K*cols, C, H, W] in [-1, 1]
    generator.train(was_training)
    return _canvas(to_uint8(images).cpu().numpy(), cols)


def _canvas(pixels: np.ndarray, cols: int) -> Image.Image:
    """uint8 images [n, C, H, W] laid out ``cols`` to a row with 2-px gaps."""
    n, c, h, w = pixels.shape
    rows = n // cols
    pad = 2
    canvas = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[top : top + h, left : left + w] = pixels[i].transpose(1, 2, 0)
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas)


def save_grid(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor, cols: int, path: str) -> Image.Image:
    """Render a per-class grid, write it atomically as PNG and return it."""
    image = render_grid(generator, z, labels, cols)
    _write_png(image, path)
    return image


def _write_png(image: Image.Image, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def upload_logs(local_dir: str, remote_dir: str) -> None:
    """Copy metrics.jsonl, timing.json, grids/ and tensorboard/ to a URI run folder (s3://, gs://).

    Rank 0 logs into a local folder because object stores cannot append; this mirrors it at every
    checkpoint so the run folder in storage holds the logs too.
    """
    copy_local_tree(local_dir, remote_dir)
