"""Rank 0's progress log without Ray: metrics.jsonl, grids, TensorBoard event files, and a resume
after a crash that leaves each step once in the event log."""

from __future__ import annotations

import json
import os

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from synthgen.train.progress import GRID_TAG, TENSORBOARD_DIR, TIMING_FILE, ProgressLog, record_timing


class TinyGenerator(torch.nn.Module):
    """z [B, 4], labels [B] -> images [B, 1, 6, 6] in [-1, 1]; the label sets the brightness."""

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        base = labels.float().view(-1, 1, 1, 1) / 2 - 0.5  # [B, 1, 1, 1]
        return torch.tanh(base + 0.1 * z[:, :1].view(-1, 1, 1, 1)).expand(-1, 1, 6, 6)


def events(run_dir) -> EventAccumulator:
    acc = EventAccumulator(os.path.join(run_dir, TENSORBOARD_DIR), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_records_and_grids_become_tensorboard_scalars_and_images(tmp_path):
    log = ProgressLog(str(tmp_path), total_steps=6, global_batch=8)
    log.truncate_after(0)
    for step, d in ((3, 1.5), (6, 1.25)):
        log.record(step, d_loss=d, g_loss=-d)
    z, labels = torch.randn(6, 4), torch.arange(3).repeat_interleave(2)  # 3 classes x 2 columns
    path = log.save_grid(6, TinyGenerator(), z, labels, cols=2)
    log.close()
    assert path == os.path.join(str(tmp_path), "grids", "grid-000006.png") and os.path.isfile(path)
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    acc = events(tmp_path)
    assert set(acc.Tags()["scalars"]) == {"d_loss", "g_loss", "img_per_s"}
    assert [(e.step, e.value) for e in acc.Scalars("d_loss")] == [(3, 1.5), (6, 1.25)]
    assert [e.value for e in acc.Scalars("img_per_s")] == pytest.approx([r["img_per_s"] for r in rows])
    (image,) = acc.Images(GRID_TAG)
    assert image.step == 6 and (image.width, image.height) == (2 * 8 + 2, 3 * 8 + 2)  # 6 px + 2 px padding


def test_a_resumed_attempt_purges_the_crashed_attempts_later_steps(tmp_path):
    first = ProgressLog(str(tmp_path), total_steps=12, global_batch=8)
    first.truncate_after(0)
    for step in (3, 6, 9):  # checkpoint at 6, then a crash after logging step 9
        first.record(step, d_loss=float(step), g_loss=0.0)
    first.close()
    resumed = ProgressLog(str(tmp_path), total_steps=12, global_batch=8)
    resumed.truncate_after(6)  # the replacement group restarts from checkpoint 6
    for step in (9, 12):
        resumed.record(step, d_loss=100.0 + step, g_loss=0.0)
    resumed.close()
    curve = [(e.step, e.value) for e in events(tmp_path).Scalars("d_loss")]
    assert curve == [(3, 3.0), (6, 6.0), (9, 109.0), (12, 112.0)]  # step 9 once: the resumed attempt's
    assert [json.loads(line)["step"] for line in open(tmp_path / "metrics.jsonl")] == [3, 6, 9, 12]


def test_eta_is_capped_by_the_time_budget_left(tmp_path, caplog):
    # a billion-step cap would show hours; a budget with 90 s left must show 1.5 min
    log = ProgressLog(str(tmp_path), total_steps=10**9, global_batch=8, time_left=lambda: 90.0)
    log.truncate_after(0)
    with caplog.at_level("INFO", logger="synthgen"):
        log.record(3, d_loss=1.0, g_loss=1.0)
    log.close()
    assert "eta   1.5 min" in caplog.text


def test_start_up_phases_merge_into_one_timing_file(tmp_path):
    # the driver writes its phases before the workers start; rank 0 adds its own without dropping them
    record_timing(str(tmp_path), launch_time=1.0, fit_time=2.0)
    ProgressLog(str(tmp_path), total_steps=4, global_batch=2).mark_first_step(3, built_time=2.5)
    timing = json.loads((tmp_path / TIMING_FILE).read_text())
    assert set(timing) == {"launch_time", "fit_time", "built_time", "first_step", "first_step_time"}
    assert timing["launch_time"] == 1.0 and timing["built_time"] == 2.5 and timing["first_step"] == 3
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # written through a temp file, moved
