"""``evaluate(cfg)``: open the source, get the judge, run each metric, append metrics.jsonl, write report.html.

Like StyleGAN2-ADA's metric_main: one JSON line per metric with its results, settings, sample
counts, what was evaluated (checkpoint path / digest / step or shard folder), the judge, the time
taken and the synthgen version. Each line is appended as soon as its metric finishes, so a crash
in a later (slower) metric keeps the earlier results.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import synthgen
from synthgen.config import dump_yaml, to_dict
from synthgen.errors import ConfigError
from synthgen.evaluate.config import EvalConfig, registered_metrics
from synthgen.evaluate.context import EvalContext, timed
from synthgen.evaluate.metrics import get_metric
from synthgen.evaluate.sources import JudgeFilter, Source, open_checkpoint, open_shards
from synthgen.evaluate.uplift import check_uplift_possible
from synthgen.judge.cache import load_or_train_judge, real_splits
from synthgen.storage import atomic_write_text, is_uri

METRICS_FILE = "metrics.jsonl"
REPORT_FILE = "report.html"
CONFIG_FILE = "eval_config.yaml"

log = logging.getLogger("synthgen")


def open_source(cfg: EvalConfig) -> Source:
    """The checkpoint or shard folder named by ``cfg``.

    Raises:
        CheckpointError / ShardError: nothing loadable there.
    """
    if cfg.checkpoint:
        from synthgen.evaluate.transfer import is_translation_checkpoint, open_translator
        from synthgen.evaluate.upscale import open_upscaler
        from synthgen.translation import load_translator

        if is_translation_checkpoint(cfg.checkpoint):
            if cfg.filter is not None or not cfg.data_from_checkpoint:
                raise ConfigError(
                    "filter and data_from_checkpoint=false apply to generators that draw from noise; a translation "
                    "or upscaler checkpoint is measured on its run's own data: and data_b: (drop those options)"
                )
            G, info = load_translator(cfg.checkpoint, use_ema=cfg.use_ema)  # loaded once, for either kind
            return (open_upscaler if info.factor > 1 else open_translator)(cfg, G, info)
        return open_checkpoint(
            cfg.checkpoint, cfg.data, cfg.data_from_checkpoint, cfg.seed, cfg.use_ema, cfg.batch_size
        )
    return open_shards(cfg.shards, cfg.data, cfg.data_from_checkpoint)


SOURCE_KINDS = {  # Metric.measures -> what such a source is, in words
    "generator": "a generator that draws images from noise, or its shards",
    "translator": "a translation checkpoint (pix2pix, cyclegan, pixelda: images -> images)",
    "upscaler": "an upscaler checkpoint (srgan)",
}


def source_measures(source: Source) -> str:
    """What kind of source ``source`` is, in ``Metric.measures`` terms: generator, translator or upscaler."""
    return str(source.identity.get("measures", "generator"))


def is_translator(source: Source) -> bool:
    """Whether ``source`` is a translation (image -> image, not upscaling) checkpoint: its metric trains its own
    classifiers and needs no judge."""
    return source_measures(source) == "translator"


def check_classes(source: Source, real_names: Sequence[str]) -> None:
    """The generated labels must be the real data's classes: by name, or by index for a translation into a domain
    whose folders name them their own way (``Source.classes_by_index``).

    Raises:
        ConfigError: other classes (another data set than the generator's).
    """
    same = (
        len(real_names) == len(source.class_names)
        if source.classes_by_index
        else tuple(real_names) == tuple(source.class_names)
    )
    if not same:
        raise ConfigError(
            f"the generator's classes {list(source.class_names)} differ from the real data's "
            f"{list(real_names)}; set data.* to the data set it was trained on"
        )


def metrics_for_source(cfg: EvalConfig, source: Source) -> EvalConfig:
    """``cfg`` with the metrics that fit ``source``: every registered metric (the default, ``--metrics all``)
    means every metric of the source's kind (``Metric.measures``).

    Raises:
        ConfigError: a listed metric measures another kind of source.
    """
    kind = source_measures(source)
    fits = tuple(m for m in cfg.metrics if get_metric(m).measures == kind)
    if tuple(cfg.metrics) == registered_metrics():
        return dataclasses.replace(cfg, metrics=fits)
    wrong = [m for m in cfg.metrics if m not in fits]
    if wrong:
        theirs = sorted({get_metric(m).measures for m in wrong})
        mine = [name for name in registered_metrics() if get_metric(name).measures == kind]
        raise ConfigError(
            f"{source.path!r} is {SOURCE_KINDS[kind]}; {wrong} measure {' / '.join(SOURCE_KINDS[t] for t in theirs)}. "
            f"The metrics for this source: {mine} (pass --metrics {','.join(mine)}, or another source)"
        )
    return cfg


def resolve_out_dir(cfg: EvalConfig, source: Source) -> str:
    """``cfg.out``, else ``<run folder>/eval`` for a checkpoint or ``<shard folder>/eval`` for shards.

    Raises:
        ConfigError: no local default exists (a URI source) and ``--out`` was not given.
    """
    if cfg.out:
        if is_uri(cfg.out):
            raise ConfigError(f"out={cfg.out!r} must be a local folder (metrics.jsonl is appended in place)")
        return os.path.abspath(os.path.expanduser(cfg.out))
    if source.kind == "checkpoint":
        base = source.run_dir or (None if is_uri(source.path) else os.path.abspath(source.identity["resolved_path"]))
    else:
        base = None if is_uri(source.path) else os.path.abspath(source.path)
    if base is None:
        raise ConfigError(f"{source.path!r} is remote; pass --out FOLDER for metrics.jsonl and report.html")
    return os.path.join(base, "eval")


def write_text(path: str, text: str) -> None:
    """``atomic_write_text``, then the usual umask-based permissions (its temp files are 0600) so
    that a report can be read by whoever may read the run folder."""
    atomic_write_text(path, text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def append_jsonl(path: str, row: dict[str, Any]) -> None:
    """Append one JSON line atomically (rewrite through a temp file + os.replace)."""
    old = ""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            old = fh.read()
        if old and not old.endswith("\n"):
            old += "\n"
    write_text(path, old + json.dumps(row, sort_keys=False) + "\n")


def _metric_row(name: str, out: Any, seconds: float, ctx: EvalContext) -> dict[str, Any]:
    """One line of ``metrics.jsonl``: a metric's output with what it was measured on and when."""
    cfg, source = ctx.cfg, ctx.source
    return _jsonable(
        {
            "metric": name,
            "results": out.results,
            "settings": out.settings,
            "counts": out.counts,
            "num_samples": cfg.num_samples,
            "seed": cfg.seed,
            "source": source.identity,
            "judge": ctx.judge.describe() if ctx.judge is not None else None,
            "data": to_dict(source.data_cfg),
            "seconds": round(seconds, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "timestamp": time.time(),
            "synthgen_version": synthgen.__version__,
        }
    )


def _jsonable(value: Any) -> Any:
    """Replace non-finite floats (JSON has none) with strings so every line stays valid JSON."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def evaluate(cfg: EvalConfig, progress: bool = True) -> list[dict[str, Any]]:
    """Run ``cfg.metrics`` on the checkpoint or shards of ``cfg``.

    Args:
        cfg: the resolved evaluation config (validated here).
        progress: show classifier training progress (log lines go to the "synthgen" logger either way).

    Returns:
        The metric rows appended to ``<out>/metrics.jsonl`` (one per metric, in ``cfg.metrics`` order).

    Raises:
        ConfigError: invalid config (before anything is written).
        CheckpointError / ShardError / DataError: unreadable checkpoint, shards or real data.
    """
    cfg.validate()
    source = open_source(cfg)
    cfg = metrics_for_source(cfg, source)
    check_uplift_possible(cfg, source.experiment is not None, source.generator is not None)
    out_dir = resolve_out_dir(cfg, source)
    metric_fns = [(name, get_metric(name).compute) for name in cfg.metrics]
    real_train, real_test = real_splits(source.data_cfg)  # a translator: domain B's (it maps classes by index)
    if source_measures(source) == "generator":
        check_classes(source, real_train.class_names)
    judge = None  # a translator's metric trains its own classifiers: no judge features
    if not is_translator(source):
        judge = load_or_train_judge(
            source.data_cfg, judge_cfg=cfg.judge, real=(real_train, real_test), progress=progress
        )
    spec = cfg.filter  # a translator refuses a filter (open_translator): there is a judge whenever there is one
    if spec is not None and judge is not None:  # the same rejection sampling as `synthgen sample --filter`
        source.judge_filter = JudgeFilter(judge.model, spec.threshold, cfg.filter_max_candidates)
        source.identity["filter"] = {
            "spec": spec.to_text(),
            "max_candidates": cfg.filter_max_candidates,
            "judge": judge.key,
        }
    ctx = EvalContext(
        cfg=cfg,
        source=source,
        judge=judge,
        real_train=real_train,
        real_test=real_test,
        out_dir=out_dir,
        progress=progress,
    )
    if "transfer" in cfg.metrics:
        from synthgen.evaluate.transfer import check_transfer_possible

        check_transfer_possible(ctx)  # A's half, class pairing and every seed's subsets, before anything is written

    os.makedirs(out_dir, exist_ok=True)  # nothing is written before every check above has passed
    write_text(os.path.join(out_dir, CONFIG_FILE), dump_yaml(cfg))
    metrics_path = os.path.join(out_dir, METRICS_FILE)
    rows = []
    for name, fn in metric_fns:
        log.info("metric %s ...", name)
        out, seconds = timed(fn, ctx)
        row = _metric_row(name, out, seconds, ctx)
        append_jsonl(metrics_path, row)
        rows.append(row)
        log.info("metric %s done in %.1fs", name, seconds)
    if cfg.report.enabled and source_measures(source) != "generator":
        log.info(
            "report.html is not written for a translation or upscaler checkpoint (no generated set to show): see "
            "metrics.jsonl"
        )
    elif cfg.report.enabled:
        from synthgen.evaluate.report import read_jsonl, render_report

        page = render_report(ctx, rows, read_jsonl(metrics_path))
        write_text(os.path.join(out_dir, REPORT_FILE), page)
        log.info("report: %s", os.path.join(out_dir, REPORT_FILE))
    log.info("metrics: %s", metrics_path)
    return rows
