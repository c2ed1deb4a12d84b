"""The whole pipeline in one call: train -> evaluate -> sample (-> verify), as one Ray job.

    synthgen pipeline --config jobs/configs/pipeline.yaml [--set train.num_workers=4] [--dry-run] [--resume]
    python jobs/pipeline.py --config jobs/configs/pipeline.yaml --smoke-test   # a minute or two on a CPU

``PipelineConfig`` is ``ExperimentConfig``'s four sections (data, model, train, run) plus the
evaluation stage's ``EvalConfig`` and the sampling stage's ``SampleConfig``. What joins the stages
is filled in here, never typed twice: both later stages read the checkpoint the training stage
returned, and their outputs default to the run folder:

    <run folder> = <run.storage_path>/<run.name>
        checkpoint-NNNNNN/ metrics.jsonl grids/    training (synthgen.train.trainer.train)
        eval/metrics.jsonl eval/report.html        evaluation (synthgen.evaluate.run.evaluate)
        synthetic/                                 sampled shards (synthgen.sample.run.run_sample)

The stages keep their own Ray code; this module only orders them. The evaluation writes locally
(metrics.jsonl is appended in place), so with an ``s3://`` / ``gs://`` run folder it runs in the
local log folder and its files are copied to ``<run folder>/eval/`` when it is done.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from synthgen.cli_args import add_command, add_config_arguments, config_path
from synthgen.config import DataConfig, ExperimentConfig, ModelConfig, RunConfig, TrainConfig, dump_yaml, load_config
from synthgen.errors import ConfigError, ShardError
from synthgen.evaluate.config import EvalConfig
from synthgen.log import get_logger
from synthgen.sample.config import SampleConfig
from synthgen.storage import copy_local_tree, is_uri

STAGES = ("train", "evaluate", "sample")  # in this order; a pipeline runs a subset, never reordered


@dataclass(frozen=True)
class PipelineConfig:
    data: DataConfig = field(default_factory=DataConfig)  # real images to learn from
    model: ModelConfig = field(default_factory=ModelConfig)  # networks, loss, EMA, augmentation
    train: TrainConfig = field(default_factory=TrainConfig)  # distributed training loop
    run: RunConfig = field(default_factory=RunConfig)  # where the run folder goes, which Ray cluster
    evaluate: EvalConfig = field(
        default_factory=EvalConfig
    )  # metrics of the trained checkpoint (checkpoint: filled in)
    sample: SampleConfig = field(
        default_factory=SampleConfig
    )  # shards of the trained checkpoint (checkpoint: filled in)
    stages: tuple[str, ...] = (
        STAGES  # which of train, evaluate, sample to run (without train: the run's latest checkpoint)
    )
    verify: bool = True  # re-read every shard and PNG after sampling; the job fails if anything is off

    def experiment(self) -> ExperimentConfig:
        """The training stage's config (the first four sections)."""
        return ExperimentConfig(data=self.data, model=self.model, train=self.train, run=self.run)

    def run_dir(self) -> str:
        """``<run.storage_path>/<run.name>``, absolute for local paths."""
        from synthgen.train.trainer import run_dir_of

        return run_dir_of(self.experiment())

    def sample_config(self, checkpoint: str) -> SampleConfig:
        """The sampling stage's config for ``checkpoint``: out defaults to ``<run folder>/synthetic``."""
        return dataclasses.replace(
            self.sample,
            checkpoint=checkpoint,
            out=self.sample.out or f"{self.run_dir()}/synthetic",
            ray_address=self.sample.ray_address or self.run.ray_address,
        )

    def eval_config(self, checkpoint: str) -> EvalConfig:
        """The evaluation stage's config for ``checkpoint``: out defaults to ``<run folder>/eval``
        (for a URI run folder: the local log folder's ``eval/``, copied to the run folder afterwards)."""
        return dataclasses.replace(self.evaluate, checkpoint=checkpoint, out=self.evaluate.out or local_eval_dir(self))

    def validate(self) -> None:
        """Check every stage's values, with the joins filled in.

        Raises:
            ConfigError: naming the key, the bad value and what is allowed.
        """
        self.experiment().validate()
        if not self.stages or any(s not in STAGES for s in self.stages) or len(set(self.stages)) != len(self.stages):
            raise ConfigError(f"stages={list(self.stages)!r} is invalid: must be a non-empty subset of {list(STAGES)}")
        if list(self.stages) != [s for s in STAGES if s in self.stages]:
            raise ConfigError(f"stages={list(self.stages)!r} is out of order: they run as {list(STAGES)}")
        taken = [
            (key, value)
            for key, value in (
                ("sample.checkpoint", self.sample.checkpoint),
                ("evaluate.checkpoint", self.evaluate.checkpoint),
                ("evaluate.shards", self.evaluate.shards),
            )
            if value
        ]
        if taken:
            key, value = taken[0]
            raise ConfigError(
                f"{key}={value!r} cannot be set in a pipeline: the checkpoint comes from the training stage "
                "(run.storage_path/run.name); leave it empty, or use jobs/sample.py / jobs/evaluate.py on "
                "an existing run"
            )
        placeholder = self.run_dir()  # what the training stage will return, for the checks below
        self.sample_config(placeholder).validate()
        self.eval_config(placeholder).validate()


@dataclass(frozen=True)
class PipelineResult:
    run_dir: str  # the run folder
    checkpoint_path: str  # the checkpoint evaluated and sampled
    final_step: int  # its training step
    eval_rows: tuple[dict[str, Any], ...]  # metric rows appended by this run (empty when skipped)
    eval_dir: str  # where metrics.jsonl and report.html are ("" when evaluate did not run)
    sample_out: str  # the shard folder ("" when sample did not run)
    num_samples: int  # images in the shard folder's manifest (0 when sample did not run)


def local_eval_dir(cfg: PipelineConfig) -> str:
    """Where the evaluation writes: ``<run folder>/eval``, or ``<local log folder>/eval`` for URI runs."""
    from synthgen.train.trainer import local_log_dir

    return os.path.join(local_log_dir(cfg.experiment()), "eval")


def _log(message: str, level: int = logging.INFO) -> None:
    """One line of the pipeline's progress through the synthgen logger (``[synthgen] pipeline: ...``)."""
    get_logger().log(level, f"pipeline: {message}")


def _train(cfg: PipelineConfig, resume: bool):
    """Run the training stage, or skip it when ``--resume`` finds the run already finished."""
    from synthgen.train.trainer import TrainResult, finished_checkpoint, train

    exp, run_dir = cfg.experiment(), cfg.run_dir()
    if resume:
        done = finished_checkpoint(exp, run_dir)  # a local folder or a URI
        if done is not None:  # nothing left to train (steps or time budget reached): do not start a worker group
            _log(f"train: already finished at step {done[0]} ({done[1]}); skipped")
            return TrainResult(run_dir=run_dir, checkpoint_path=done[1], final_step=done[0])
    return train(exp, resume=resume)


def _latest(cfg: PipelineConfig):
    """The run's latest checkpoint, for a pipeline without the train stage."""
    from synthgen import checkpoint as ckpt
    from synthgen.train.trainer import TrainResult

    run_dir = cfg.run_dir()
    if is_uri(run_dir):
        _, info = ckpt.load_generator(run_dir)  # CheckpointError with the fix when there is none
        return TrainResult(run_dir, f"{run_dir}/{ckpt.checkpoint_name(info.step)}", info.step)
    path = ckpt.resolve_checkpoint(run_dir)  # CheckpointError with the fix when there is none
    return TrainResult(run_dir=run_dir, checkpoint_path=path, final_step=ckpt.step_of(path))


def _evaluated_before(metrics_path: str, metrics: Sequence[str], digest: str) -> bool:
    """True when metrics.jsonl already holds a row of every metric for this exact checkpoint file."""
    if not os.path.isfile(metrics_path):
        return False
    seen = set()
    with open(metrics_path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("source", {}).get("digest") == digest:
                seen.add(row.get("metric"))
    return set(metrics) <= seen


def _evaluate(cfg: PipelineConfig, checkpoint: str, resume: bool) -> tuple[list[dict[str, Any]], str]:
    """Run the evaluation stage on ``checkpoint``; copy its files to a URI run folder."""
    from synthgen import checkpoint as ckpt
    from synthgen.evaluate.run import METRICS_FILE, evaluate

    ecfg = cfg.eval_config(checkpoint)
    out_dir = os.path.abspath(os.path.expanduser(ecfg.out))
    if resume:
        _, info = ckpt.load_generator(checkpoint)
        if _evaluated_before(os.path.join(out_dir, METRICS_FILE), ecfg.metrics, info.digest):
            _log(f"evaluate: {out_dir}/{METRICS_FILE} already has {list(ecfg.metrics)} for this checkpoint; skipped")
            return [], out_dir
    rows = evaluate(ecfg)
    run_dir = cfg.run_dir()
    if is_uri(run_dir) and not cfg.evaluate.out:
        # The local folder goes when the head node goes: keep the results beside the checkpoints.
        copy_local_tree(out_dir, f"{run_dir}/eval")
        _log(f"evaluate: copied {out_dir} to {run_dir}/eval")
    return rows, out_dir


def _warn_relative_storage(cfg: PipelineConfig) -> None:
    """Under ``ray job submit`` a relative run folder lands in the job's temporary working_dir copy."""
    path = cfg.run.storage_path
    if (
        os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
        and not is_uri(path)
        and not os.path.isabs(os.path.expanduser(path))
    ):
        _log(
            f"run.storage_path={path!r} is relative: in a Ray job it resolves to {cfg.run_dir()}, "
            "inside the job's temporary copy of the working_dir, which Ray deletes eventually. Pass an "
            "absolute shared path or a bucket: --set run.storage_path=/shared/runs or s3://bucket/runs",
            logging.WARNING,
        )


def run_pipeline(cfg: PipelineConfig, resume: bool = False) -> PipelineResult:
    """Train, evaluate and sample ``cfg`` in order (the stages listed in ``cfg.stages``).

    Args:
        cfg: the resolved pipeline config (validated here).
        resume: continue an interrupted pipeline: training resumes from its latest checkpoint (or
            is skipped when finished), an evaluation already recorded for the same checkpoint is
            skipped, and sampling writes only the missing shards (it always does).

    Returns:
        Where the run, its evaluation and its shards are.

    Raises:
        ConfigError: invalid config, or a run folder that conflicts with ``resume``.
        CheckpointError / DataError: unreadable checkpoint or real data.
        TrainingDivergedError / TrainingFailedError: training failed.
        ShardError: sampling failed, or the shards did not verify.
    """
    cfg.validate()
    _warn_relative_storage(cfg)
    if "train" in cfg.stages:
        _log("stage 1/3: train")
        trained = _train(cfg, resume)
    else:
        trained = _latest(cfg)
    _log(f"checkpoint: {trained.checkpoint_path} (step {trained.final_step})")
    rows: list[dict[str, Any]] = []
    eval_dir = out = ""
    total = 0
    if "evaluate" in cfg.stages:
        _log("stage 2/3: evaluate")
        rows, eval_dir = _evaluate(cfg, trained.checkpoint_path, resume)
    if "sample" in cfg.stages:
        from synthgen.sample.run import run_sample

        scfg = cfg.sample_config(trained.checkpoint_path)
        what = (
            f"around the real images of {scfg.around} ({scfg.per_image} per image)"
            if scfg.around
            else f"{scfg.prior_num_samples} images"
        )
        _log(f"stage 3/3: sample {what} -> {scfg.out}")
        result = run_sample(scfg)
        out, total = scfg.out, int(result.manifest["total"])
        _log(
            f"sample: {total} images in {result.manifest['num_shards']} shards "
            f"({result.shards_written} written, {result.shards_reused} already complete)"
        )
        if cfg.verify:
            from synthgen.sample.verify import verify_output

            report = verify_output(out)
            if not report.ok:
                raise ShardError(
                    f"the shards in {out} did not verify ({len(report.problems)} problems): "
                    + "; ".join(report.problems[:5])
                    + " - re-run with --resume to rewrite them"
                )
            _log(f"verify OK: {report.total} images in {report.shards} shards, {report.images_decoded} PNGs decoded")
    return PipelineResult(
        trained.run_dir, trained.checkpoint_path, trained.final_step, tuple(rows), eval_dir, out, total
    )


PIPELINE_EPILOG = """\
outputs (run folder = <run.storage_path>/<run.name>):
  checkpoint-NNNNNN/  metrics.jsonl  grids/    training
  eval/metrics.jsonl  eval/report.html         evaluation of the final checkpoint (evaluate.out)
  synthetic/                                   Parquet/PNG shards + manifest.json (sample.out)

examples:
  synthgen pipeline --config jobs/configs/pipeline.yaml --dry-run
  synthgen pipeline --config jobs/configs/pipeline.yaml --set train.num_workers=4 --set sample.num_samples=100000
  synthgen pipeline --config jobs/configs/pipeline.yaml --resume       # continue after a crash
  python jobs/pipeline.py --config jobs/configs/pipeline.yaml --smoke-test

"""


def register(subparsers: Any) -> None:
    """Add the ``pipeline`` subcommand (``synthgen.cli`` calls this with its subparsers)."""
    p = add_command(
        subparsers,
        "pipeline",
        "train -> evaluate -> sample -> verify in one run (one Ray job)",
        "Train a GAN with Ray Train, evaluate its final checkpoint, sample it into verified "
        "Parquet/PNG shards. Sections data/model/train/run are `synthgen train`'s, evaluate.* is "
        "`synthgen evaluate`'s and sample.* is `synthgen sample`'s; the checkpoint joining them is filled in.",
        PIPELINE_EPILOG,
    )
    add_config_arguments(
        p,
        config_help="pipeline YAML (e.g. jobs/configs/pipeline.yaml)",
        set_example="train.steps=20000 --set sample.num_actors=4",
        dry_run_help="print the resolved config and where each stage reads and writes, then exit",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted pipeline (finished stages are skipped, shards are kept)",
    )
    p.set_defaults(func=cmd_pipeline)


def dry_run_text(cfg: PipelineConfig) -> str:
    """The resolved config plus the paths each stage will use (nothing is read or written)."""
    run_dir = cfg.run_dir()
    ckpt = f"{run_dir}/checkpoint-{cfg.train.steps:06d}"
    return (
        dump_yaml(cfg) + "# resolved (nothing was read or written)\n"
        f"# run folder:       {run_dir}\n"
        f"# stages:           {' -> '.join(cfg.stages)}\n"
        f"# checkpoint:       {ckpt} (evaluated and sampled)\n"
        f"# evaluate.out:     {cfg.eval_config(ckpt).out}\n"
        f"# sample.out:       {cfg.sample_config(ckpt).out}\n"
    )


def cmd_pipeline(args: argparse.Namespace) -> int:
    """``synthgen pipeline``: returns 0; typed errors propagate to ``cli_args.run_guarded`` (exit 1 or 2).

    Raises:
        ConfigError: bad config (exit 2); other SynthgenErrors from ``run_pipeline`` (exit 1).
    """
    cfg = load_config(PipelineConfig, config_path(args), args.overrides)
    if args.dry_run:
        print(dry_run_text(cfg), end="")
        return 0
    result = run_pipeline(cfg, resume=args.resume)
    if result.eval_rows:
        from synthgen.evaluate.report import format_table

        print(format_table(list(result.eval_rows)))
    print(f"run folder: {result.run_dir}")
    print(f"checkpoint: {result.checkpoint_path} (step {result.final_step})")
    if result.eval_dir:
        print(f"evaluation: {result.eval_dir}")
    if result.sample_out:
        print(f"shards:     {result.sample_out} ({result.num_samples} images)")
    return 0
