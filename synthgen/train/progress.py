"""Progress output of a training run: periodic lines, metrics.jsonl rows and per-class sample grids."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch import nn

from synthgen.data.torch_dataset import to_uint8
from synthgen.storage import atomic_write_text

METRICS_FILE = "metrics.jsonl"
TIMING_FILE = "timing.json"


def say(message: str) -> None:
    """Print one line from a Ray Train worker exactly once.

    Ray Train V2 patches ``print`` in workers to go through the root logger, which this machine's
    logging set-up then emits twice; writing to the stream directly avoids that.
    """
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


class ProgressLog:
    """Rank 0's log: prints a line and appends a JSON row to ``<run_dir>/metrics.jsonl`` per call."""

    def __init__(self, run_dir: str, total_steps: int, global_batch: int) -> None:
        self.path = os.path.join(run_dir, METRICS_FILE)
        self.total_steps = total_steps
        self.global_batch = global_batch
        self._t0 = time.perf_counter()
        self._last_time = self._t0
        self._last_step: int | None = None

    def truncate_after(self, step: int) -> None:
        """Drop rows past ``step`` (written after the checkpoint a resumed run restarts from)."""
        self._last_step = step
        if not os.path.exists(self.path):
            return
        with open(self.path, encoding="utf-8") as fh:
            rows = [line for line in fh if line.strip() and json.loads(line).get("step", 0) <= step]
        atomic_write_text(self.path, "".join(rows))

    def mark_first_step(self, step: int) -> None:
        """Write ``timing.json`` with the wall time of the first step (launch-to-first-step benchmarks)."""
        timing = {"first_step": step, "first_step_time": time.time()}
        atomic_write_text(os.path.join(os.path.dirname(self.path), TIMING_FILE), json.dumps(timing))

    def record(self, step: int, **values: float) -> dict:
        """Print a progress line and append a metrics row for ``step``; return the row."""
        now = time.perf_counter()
        steps_done = step - (self._last_step if self._last_step is not None else 0)
        img_per_s = steps_done * self.global_batch / max(now - self._last_time, 1e-9)
        self._last_time, self._last_step = now, step
        eta_s = (self.total_steps - step) * self.global_batch / max(img_per_s, 1e-9)
        row = {"step": step, **{k: round(float(v), 5) for k, v in values.items()},
               "img_per_s": round(img_per_s, 1), "elapsed_s": round(now - self._t0, 1), "time": time.time()}
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        losses = " | ".join(f"{k} {v:.4f}" for k, v in values.items())
        say(f"[synthgen] step {step:>6}/{self.total_steps} | {img_per_s:7.0f} img/s | {losses} | "
            f"eta {eta_s / 60:5.1f} min")
        return row


@torch.no_grad()
def render_grid(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor, cols: int) -> Image.Image:
    """Draw one row per class: ``z`` [K*cols, z_dim], ``labels`` [K*cols] -> a PIL image grid."""
    was_training = generator.training
    generator.eval()
    images = generator(z, labels).float()  # [K*cols, C, H, W] in [-1, 1]
    generator.train(was_training)
    pixels = to_uint8(images).cpu().numpy()
    n, c, h, w = pixels.shape
    rows = n // cols
    pad = 2
    canvas = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[top : top + h, left : left + w] = pixels[i].transpose(1, 2, 0)
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas)


def save_grid(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor, cols: int, path: str) -> None:
    """Render a per-class grid and write it atomically as PNG."""
    image = render_grid(generator, z, labels, cols)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def upload_logs(local_dir: str, remote_dir: str) -> None:
    """Copy metrics.jsonl, timing.json and grids/ to a URI run folder (s3://, gs://).

    Rank 0 logs into a local folder because object stores cannot append; this mirrors it at every
    checkpoint so the run folder in storage holds the logs too.
    """
    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri(remote_dir)
    for dirpath, _, files in os.walk(local_dir):
        rel = os.path.relpath(dirpath, local_dir)
        folder = root if rel == "." else f"{root}/{rel}"
        fs.create_dir(folder, recursive=True)  # a no-op on object stores; local file:// needs it
        for name in files:
            if name.startswith("."):
                continue
            target = f"{folder}/{name}"
            pafs.copy_files(os.path.join(dirpath, name), target, destination_filesystem=fs)
