"""The per-worker GAN training loop that Ray Train runs on every DDP worker.

One step = one discriminator update on real+fake, then one generator update. G and D each get their
own DDP wrapper (one wrapper around both breaks gradient sync). Inside the G step the discriminator is
called through ``D.module`` with its parameters frozen, so DDP only syncs the network being trained.
Rank 0 writes checkpoints, grids and metrics.jsonl; every rank calls ``ray.train.report`` the same number
of times (it is a barrier).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from typing import Any

import torch
import torch.distributed as dist

from synthgen import checkpoint as ckpt
from synthgen.config import ExperimentConfig, TrainConfig, from_dict
from synthgen.faults import Faults
from synthgen.log import get_logger, setup_logging
from synthgen.storage import atomic_write_text, is_uri
from synthgen.train.families import family_of
from synthgen.train.progress import ProgressLog, upload_logs
from synthgen.train.step import GANStep
from synthgen.train.translation_step import TranslationStep

DIVERGED_FILE = "diverged.json"  # written by rank 0 when a loss turns NaN/inf


def _maybe_inject_fault(
    cfg: ExperimentConfig, fail_at_step: int, run_dir: str, storage_run_dir: str, step: int, rank: int, world: int
) -> None:
    """Kill this worker process once at ``fail_at_step`` (``synthgen.faults``: tests of fault tolerance)."""
    if fail_at_step != step or rank != world - 1:
        return
    marker = os.path.join(run_dir, ".fault-injected")
    if os.path.exists(marker):
        return
    latest = (step - 1) // cfg.train.checkpoint_every * cfg.train.checkpoint_every
    if latest > 0:
        _wait_until_registered(storage_run_dir, ckpt.checkpoint_name(latest))
    with open(marker, "w", encoding="utf-8") as fh:
        fh.write(f"killed rank {rank} at step {step}\n")
    get_logger().info(f"fault injection: killing rank {rank} at step {step}")
    os._exit(137)


def _wait_until_registered(storage_run_dir: str, name: str, timeout_s: float = 60.0) -> None:
    """Block until Ray Train's controller has recorded checkpoint ``name`` (bounded by ``timeout_s``).

    The controller registers a reported checkpoint asynchronously; a worker that dies before it does
    loses that checkpoint, and a fault test would then measure Ray's race instead of our resume.
    """
    if is_uri(storage_run_dir):
        return
    import time

    snapshot = os.path.join(storage_run_dir, "checkpoint_manager_snapshot.json")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(snapshot, encoding="utf-8") as fh:
                if name in fh.read():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    get_logger().warning(f"fault injection: {name} was not registered by Ray Train within {timeout_s:.0f} s")


def _resume(gan_step: GANStep | TranslationStep, rank: int) -> tuple[int, float]:
    """Restore the latest checkpoint Ray Train hands this worker group (after a restart).

    Returns:
        (its step, the step loop's wall-clock seconds spent up to it); (0, 0.0) for a fresh start.
    """
    import ray.train

    restored = ray.train.get_checkpoint()
    if restored is None:
        return 0, 0.0
    with restored.as_directory() as folder:
        payload = ckpt.load_payload(folder)
    start_step = ckpt.restore_training_state(payload, gan_step.training_state())
    if rank == 0:
        get_logger().info(f"resumed from checkpoint at step {start_step}")
    return start_step, float(payload.get("train_seconds", 0.0))


class TimeBudget:
    """``train.max_minutes``: the step loop's wall clock, carried across resumed attempts.

    Every rank asks at the same steps; the verdict is all-reduced (max), so all ranks stop at one step
    even when their clocks differ by a little.
    """

    def __init__(self, max_minutes: float, spent_s: float, world: int) -> None:
        self.budget_s = max_minutes * 60.0  # 0 = no budget
        self.spent_before_s = spent_s  # seconds of earlier attempts, up to the checkpoint resumed from
        self.world = world
        self._t0 = time.monotonic()

    def spent_s(self) -> float:
        """Seconds of the step loop so far, earlier attempts included."""
        return self.spent_before_s + time.monotonic() - self._t0

    def remaining_s(self) -> float:
        """Seconds left of the budget (never below 0); inf without a budget."""
        return max(0.0, self.budget_s - self.spent_s()) if self.budget_s > 0 else float("inf")

    def exhausted(self) -> bool:
        """True (on every rank alike) once the budget is spent; False without a budget."""
        if self.budget_s <= 0:
            return False
        over = torch.tensor([1.0 if self.spent_s() >= self.budget_s else 0.0])
        if self.world > 1:
            dist.all_reduce(over, op=dist.ReduceOp.MAX)
        return bool(over.item() > 0)


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Train on one Ray Train worker.

    ``loop_config`` = {"experiment": resolved config dict, "run_dir": local log folder,
    "storage_run_dir": the run folder in storage (a URI for object storage), "faults": test-only
    ``synthgen.faults.Faults`` fields}.
    """
    import ray.train
    import ray.train.torch

    worker_start_time = time.time()  # start-up phases for timing.json (bench_train prints them)
    setup_logging(propagate=False)  # Ray gives the worker's root logger a console handler: avoid each line twice
    cfg = from_dict(ExperimentConfig, loop_config["experiment"])
    run_dir: str = loop_config["run_dir"]  # local folder for logs and grids
    storage_run_dir: str = loop_config.get("storage_run_dir", run_dir)  # the run folder in storage (maybe a URI)
    t_cfg = cfg.train
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(t_cfg.num_threads or max(1, int(t_cfg.cpus_per_worker)))
    device = ray.train.torch.get_device() if t_cfg.use_gpu else torch.device("cpu")
    torch.manual_seed(t_cfg.seed + rank)

    family = family_of(cfg)(cfg, device, rank, world)  # data, networks, step and grids of this kind of model
    gan_step = family.step
    fault = Faults(**loop_config.get("faults", {}))
    gan_step.nan_at_step = fault.train_nan_at_step
    start_step, spent_s = _resume(gan_step, rank)
    budget = TimeBudget(t_cfg.max_minutes, spent_s, world)
    built_time = time.time()  # data loaded, networks built, checkpoint restored

    log = (
        ProgressLog(
            run_dir, total_steps=t_cfg.steps, global_batch=t_cfg.batch_size * world, time_left=budget.remaining_s
        )
        if rank == 0
        else None
    )
    if log is not None:
        log.truncate_after(start_step)
    sums = torch.zeros(3, dtype=torch.float64)  # d_loss, g_loss, steps since last log

    for step in range(start_step + 1, t_cfg.steps + 1):
        _maybe_inject_fault(cfg, fault.train_fail_at_step, run_dir, storage_run_dir, step, rank, world)
        d_loss, g_loss = family.train(step, rank)
        if log is not None and step == start_step + 1:
            log.mark_first_step(step, worker_start_time=worker_start_time, built_time=built_time)

        sums += torch.tensor([d_loss.item(), g_loss.item(), 1.0], dtype=torch.float64)
        out_of_time = _out_of_time(step, t_cfg, budget, rank)
        is_ckpt = step % t_cfg.checkpoint_every == 0 or step == t_cfg.steps or out_of_time
        if step % t_cfg.log_every == 0 or is_ckpt:
            d_mean, g_mean = _mean_losses(sums, world)
            if not (math.isfinite(d_mean) and math.isfinite(g_mean)):
                # Every rank sees the same reduced value, so all stop together; nothing is checkpointed,
                # so the last good checkpoint stays the latest. The driver reads the marker.
                if rank == 0:
                    _mark_diverged(run_dir, step, d_mean, g_mean)
                return
            if log is not None:
                log.record(step, d_loss=d_mean, g_loss=g_mean)
        is_grid = step % t_cfg.sample_every == 0 or step == t_cfg.steps or out_of_time
        if rank == 0 and (is_grid or is_ckpt):
            # G's running BN stats don't fit the averaged weights: recompute them before anyone samples.
            gan_step.ema.recalibrate_bn()
        if rank == 0 and is_grid:
            family.save_grid(log, step)
        if rank == 0 and is_ckpt and storage_run_dir != run_dir:
            upload_logs(run_dir, storage_run_dir)
        if is_ckpt:
            _report_checkpoint(cfg, family.class_names, family.image_shape, step, gan_step, rank, budget.spent_s())
        if out_of_time:
            return


def _out_of_time(step: int, t_cfg: TrainConfig, budget: TimeBudget, rank: int) -> bool:
    """Whether ``train.max_minutes`` is spent: asked only at log steps (one tiny all-reduce per ``log_every``
    steps, not per step) and never at the last step, which checkpoints anyway."""
    out = step % t_cfg.log_every == 0 and step < t_cfg.steps and budget.exhausted()
    if out and rank == 0:
        get_logger().info(f"time budget train.max_minutes={t_cfg.max_minutes:g} spent: stopping at step {step}")
    return out


def _mark_diverged(run_dir: str, step: int, d_loss: float, g_loss: float) -> None:
    """The marker the driver reads to report a non-finite loss at ``step`` (instead of retrying)."""
    marker = {"step": step, "d_loss": repr(d_loss), "g_loss": repr(g_loss)}
    atomic_write_text(os.path.join(run_dir, DIVERGED_FILE), json.dumps(marker))


def _mean_losses(sums: torch.Tensor, world: int) -> tuple[float, float]:
    """(d_loss, g_loss) means since the last log over all ranks, from ``sums`` = [d sum, g sum, steps]
    (one all-reduce); ``sums`` is zeroed for the next interval."""
    if world > 1:
        dist.all_reduce(sums)
    d_mean, g_mean = (sums[0] / sums[2]).item(), (sums[1] / sums[2]).item()
    sums.zero_()
    return d_mean, g_mean


def _report_checkpoint(
    cfg: ExperimentConfig,
    class_names: tuple[str, ...],
    image_shape: tuple[int, int, int],
    step: int,
    gan_step: GANStep | TranslationStep,
    rank: int,
    train_seconds: float,
) -> None:
    """Rank 0 writes the checkpoint folder; every rank reports (``report`` is a barrier)."""
    import ray.train

    metrics = {"step": step}
    name = ckpt.checkpoint_name(step)
    if rank != 0:
        ray.train.report(metrics, checkpoint=None, checkpoint_dir_name=name)
        return
    payload = ckpt.make_payload(
        gan_step.training_state(),
        step=step,
        config=cfg,
        class_names=class_names,
        image_shape=image_shape,
        train_seconds=train_seconds,
    )
    with tempfile.TemporaryDirectory(prefix="synthgen-ckpt-") as tmp:
        ckpt.write_checkpoint_dir(tmp, payload, cfg)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp), checkpoint_dir_name=name)
