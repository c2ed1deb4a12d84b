"""Driver side of training: build the Ray Train ``TorchTrainer``, run it, and report where things went."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from dataclasses import dataclass, replace

from synthgen import checkpoint as ckpt
from synthgen import faults
from synthgen.config import ExperimentConfig, dump_yaml, to_dict
from synthgen.errors import ConfigError, TrainingDivergedError, TrainingFailedError
from synthgen.log import get_logger
from synthgen.ray_init import check_ray_address, init_ray, state_api_served
from synthgen.storage import atomic_write_text, driver_path, is_uri
from synthgen.train.layout import cluster_nodes, resolve_layout
from synthgen.train.loop import DIVERGED_FILE, train_loop_per_worker
from synthgen.train.progress import record_timing


@dataclass(frozen=True)
class TrainResult:
    run_dir: str  # <storage_path>/<run name>: checkpoints, metrics.jsonl, grids/
    checkpoint_path: str  # latest complete checkpoint folder
    final_step: (
        int  # step of that checkpoint (== train.steps when the run finished; less when train.max_minutes stopped it)
    )


def run_dir_of(cfg: ExperimentConfig) -> str:
    """The run folder: ``<storage_path>/<name>`` (absolute for local paths)."""
    storage = cfg.run.storage_path
    if not is_uri(storage):
        storage = os.path.abspath(os.path.expanduser(storage))
    return f"{storage.rstrip('/')}/{cfg.run.name}"


def local_log_dir(cfg: ExperimentConfig) -> str:
    """Where rank 0 writes metrics.jsonl and grids: the run folder, or a local cache for URI storage."""
    run_dir = run_dir_of(cfg)
    if is_uri(run_dir):
        return os.path.join(os.path.expanduser("~/.cache/synthgen/runs"), cfg.run.name)
    return run_dir


def check_run_folder(cfg: ExperimentConfig, resume: bool) -> None:
    """Refuse to silently continue (or clobber) an existing run.

    Raises:
        ConfigError: the run folder has checkpoints but ``resume`` is False, or ``resume`` is True
            and there is nothing to resume.
    """
    run_dir = run_dir_of(cfg)
    existing = ckpt.list_checkpoints(run_dir)  # a local folder or a URI (one listing of the run folder)
    if existing and not resume:
        raise ConfigError(
            f"run {cfg.run.name!r} already has checkpoints in {run_dir} (latest step {existing[-1][0]}); "
            "pass --resume to continue it, or choose a new run.name (--set run.name=...)"
        )
    if resume and not is_uri(run_dir) and not os.path.isdir(run_dir):
        raise ConfigError(f"--resume: run folder {run_dir} does not exist; start the run without --resume first")


def with_layout(cfg: ExperimentConfig, nodes: list[tuple[float, float]]) -> ExperimentConfig:
    """``cfg`` with its worker layout resolved for ``nodes`` (``synthgen.train.layout``), logged with the reason.

    Raises:
        ConfigError: use_gpu without a GPU in the cluster.
    """
    t = cfg.train
    layout = resolve_layout(t.num_workers, t.cpus_per_worker, t.use_gpu, nodes)
    get_logger().info(f"layout: {layout.num_workers} worker(s) x {layout.cpus_per_worker:g} CPU(s): {layout.reason}")
    train_cfg = replace(t, num_workers=layout.num_workers, cpus_per_worker=layout.cpus_per_worker)
    return replace(cfg, train=train_cfg)


@functools.cache  # one class: it subclasses Ray's, imported on first use
def _trainer_class() -> type:
    """``TorchTrainer``, less the placement-group cleaner where the cluster serves no State API.

    Ray Train starts a detached actor that asks the State API every second whether the controller is alive, so it
    can free the workers' placement group after a crash. synthgen's own local Ray has no dashboard, so nothing
    answers at the address the cleaner asks: alone on the machine it logs "Failed to query Ray Train Controller
    actor state" every second of the run; beside another local Ray that has a dashboard, that one answers "no such
    actor" and the cleaner removes the placement group of a live run, killing its workers (seen here: the run fell
    back to its last checkpoint). A local Ray ends with the command, placement groups included, so nothing is lost.
    """
    from ray.train.torch import TorchTrainer
    from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback

    class Trainer(TorchTrainer):
        def _create_default_callbacks(self) -> list:
            callbacks = super()._create_default_callbacks()
            if state_api_served():
                return callbacks
            return [c for c in callbacks if not isinstance(c, PlacementGroupCleanerCallback)]

    return Trainer


def build_trainer(cfg: ExperimentConfig):
    """Return the configured ``TorchTrainer`` for ``cfg`` (not started)."""
    import ray.train
    from ray.train.torch import TorchConfig

    t = cfg.train
    resources = {"CPU": t.cpus_per_worker}
    if t.use_gpu:
        resources["GPU"] = 1
    storage = cfg.run.storage_path
    if not is_uri(storage):
        storage = os.path.abspath(os.path.expanduser(storage))
    return _trainer_class()(
        train_loop_per_worker,
        train_loop_config={
            "experiment": to_dict(cfg),
            "run_dir": local_log_dir(cfg),
            "storage_run_dir": run_dir_of(cfg),
            "faults": dataclasses.asdict(faults.from_env()),  # test-only; the workers never read the environment
        },
        torch_config=TorchConfig(backend="nccl" if t.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=t.num_workers,
            use_gpu=t.use_gpu,
            resources_per_worker=resources,
            # prefer other nodes for each worker (the automatic CPU layout reserves a whole node per worker)
            placement_strategy="SPREAD" if t.num_workers > 1 and not t.use_gpu else "PACK",
        ),
        run_config=ray.train.RunConfig(
            name=cfg.run.name,
            storage_path=storage,
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=t.num_to_keep),
            failure_config=ray.train.FailureConfig(max_failures=t.max_failures),
        ),
    )


def finished_checkpoint(cfg: ExperimentConfig, run_dir: str) -> tuple[int, str] | None:
    """(step, folder) of the run's latest checkpoint when nothing is left to train, else None.

    A run is finished when it reached ``train.steps`` or, with ``train.max_minutes``, spent that budget
    (the seconds each checkpoint records).
    """
    done = ckpt.list_checkpoints(run_dir)
    if not done:
        return None
    step, path = done[-1]
    if step >= cfg.train.steps:
        return step, path
    if cfg.train.max_minutes > 0:
        spent = float(ckpt.load_payload(path).get("train_seconds", 0.0))
        if spent >= cfg.train.max_minutes * 60.0:
            return step, path
    return None


def with_absolute_data_root(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with the local ``data.root`` (and ``data_b.root``) as the driver means them (``storage.driver_path``);
    the checkpoint's config then also points at the real folders.
    """
    data_b = replace(cfg.data_b, root=driver_path(cfg.data_b.root)) if cfg.data_b is not None else None
    return replace(cfg, data=replace(cfg.data, root=driver_path(cfg.data.root)), data_b=data_b)


def train(cfg: ExperimentConfig, resume: bool = False) -> TrainResult:
    """Train ``cfg`` with Ray Train DDP workers until ``cfg.train.steps`` (or ``train.max_minutes``).

    Args:
        cfg: the resolved experiment config.
        resume: continue the named run from its latest checkpoint (after the driver died).

    Returns:
        Where the run and its latest checkpoint are.

    Raises:
        ConfigError: the run folder conflicts with ``resume``.
        TrainingDivergedError: a loss became NaN/inf; the last good checkpoint stays the latest.
        SynthgenError / RuntimeError: training failed more than ``train.max_failures`` times.
    """
    launch_time = time.time()  # start-up phases for timing.json (bench_train prints them)
    check_run_folder(cfg, resume)
    check_ray_address(cfg.run.ray_address)  # a dead cluster to join fails in seconds, before anything is written
    cfg = with_absolute_data_root(cfg)
    from synthgen.train.families import family_of

    # fail fast on the driver with a clear data error, and with a clear config error (exit 2) when the model
    # refuses the data's shape, not inside a worker
    family_of(cfg).preflight(cfg)
    preflight_time = time.time()
    init_ray(cfg.run.ray_address)
    cfg = with_layout(cfg, cluster_nodes())  # the worker layout for this cluster (train.num_workers 0 = auto)
    ray_ready_time = time.time()
    run_dir = run_dir_of(cfg)
    log_dir = local_log_dir(cfg)
    os.makedirs(log_dir, exist_ok=True)
    atomic_write_text(os.path.join(log_dir, ckpt.CONFIG_FILE), dump_yaml(cfg))
    get_logger().info(f"run folder: {run_dir}")
    marker = os.path.join(log_dir, DIVERGED_FILE)
    if os.path.exists(marker):
        os.unlink(marker)  # from an earlier attempt that the user is now resuming
    record_timing(
        log_dir,
        launch_time=launch_time,
        preflight_time=preflight_time,
        ray_ready_time=ray_ready_time,
        fit_time=time.time(),
    )
    result = build_trainer(cfg).fit()
    if result.error is not None:
        raise TrainingFailedError(
            f"run {cfg.run.name!r} failed after {cfg.train.max_failures} allowed restart(s): {result.error}. "
            f"Fix the cause, then continue from the latest checkpoint with --resume"
        ) from result.error
    checkpoint_path = None
    if result.checkpoint is not None:
        # Ray drops the URI scheme (s3://bucket/x -> bucket/x): rebuild the path under our run folder.
        checkpoint_path = f"{run_dir}/{os.path.basename(result.checkpoint.path.rstrip('/'))}"
    step = ckpt.step_of(checkpoint_path) if checkpoint_path else 0
    _check_early_stop(cfg, step, checkpoint_path, marker)
    get_logger().info(f"finished at step {step}; latest checkpoint: {checkpoint_path}")
    get_logger().info(f"run folder: {run_dir}")
    return TrainResult(run_dir=run_dir, checkpoint_path=checkpoint_path, final_step=step)


def _check_early_stop(cfg: ExperimentConfig, step: int, checkpoint_path: str | None, marker: str) -> None:
    """A run that ended before ``train.steps``: fine when its time budget was spent (logged), an error when a
    loss diverged (the worker's ``marker`` file says where).

    Raises:
        TrainingDivergedError: stopped early without a spent budget.
    """
    stopped_by_budget = cfg.train.max_minutes > 0 and step > 0 and not os.path.exists(marker)
    if step < cfg.train.steps and stopped_by_budget:
        get_logger().info(
            f"time budget train.max_minutes={cfg.train.max_minutes:g} spent at step {step} "
            f"(of train.steps={cfg.train.steps})"
        )
    elif step < cfg.train.steps:
        detail = ""
        if os.path.exists(marker):
            with open(marker, encoding="utf-8") as fh:
                info = json.load(fh)
            detail = f" at step {info['step']} (d_loss={info['d_loss']}, g_loss={info['g_loss']})"
        raise TrainingDivergedError(
            f"training stopped: a loss became non-finite{detail}; the last good checkpoint is "
            f"{checkpoint_path or 'none'} (step {step}). Lower train.lr_d / train.lr_g or try "
            "model.loss=hinge, then continue with --resume"
        )
