"""The sampling stage end to end: checkpoint -> plan -> OUT checks -> fleet -> manifest.

Order of writes into OUT, which is what makes it safe to kill and re-run:

1. every check that can refuse (config, OUT is a folder, checkpoint, plan vs an existing ``plan.json``) runs before
   anything is written, so a refused run changes nothing on disk;
2. stale temp files of a crashed run are deleted, ``plan.json`` is written (first run only) and an
   old ``manifest.json`` is removed if shards are missing (no manifest = incomplete dataset);
3. ``--around`` only: actors invert the real images whose ``OUT/inversion/chunk-NNNNNN.npz`` is missing, each
   chunk file atomically (``synthgen.sample.around``); the latents are read back from those files;
4. the fleet writes the missing shards, each atomically;
5. ``manifest.json`` is written last, atomically.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any

import synthgen
from synthgen.config import to_dict
from synthgen.errors import CheckpointError, ConfigError, ShardError, SynthgenError
from synthgen.log import image_bar
from synthgen.ray_init import check_ray_address, init_ray
from synthgen.sample.around import INVERSION_DIR
from synthgen.sample.config import SampleConfig
from synthgen.sample.fleet import FleetStats, run_fleet
from synthgen.sample.out_files import build_manifest, read_plan, write_plan
from synthgen.sample.plan import SamplePlan, make_plan
from synthgen.sample.upscale import describe_upscaler
from synthgen.shards import (
    HANDLERS,
    MANIFEST_FILE,
    PLAN_FILE,
    FileRef,
    Shard,
    handlers_for,
    read_manifest,
    write_manifest,
)
from synthgen.shards.formats import shard_record
from synthgen.storage import TEMP_RE, Location, driver_path, is_uri

# What --overwrite may delete in OUT: every handler's folders, the plan and the manifest.
OWNED = (*dict.fromkeys(f for h in HANDLERS.values() for f in h.folders), INVERSION_DIR, PLAN_FILE, MANIFEST_FILE)


@dataclass(frozen=True)
class SampleResult:
    out: str  # the output folder / URI
    manifest: dict[str, Any]  # the manifest of the complete dataset
    shards_written: int  # shards produced by this run
    shards_reused: int  # complete shards found and kept
    stale_removed: tuple[str, ...] = ()  # temp files of crashed runs that were deleted
    stats: FleetStats | None = field(default=None, compare=False)  # fleet timings (None if nothing to do)


def load_for_sampling(cfg: SampleConfig) -> tuple[SamplePlan, Any, dict[str, Any]]:
    """Load the checkpoint's generator on the CPU and resolve the plan.

    Returns:
        (plan, CheckpointInfo, gen_spec) where gen_spec = {"model", "image_shape", "state"} is what
        every actor rebuilds the generator from (so actors need no access to the checkpoint path);
        with ``--around`` it also holds (driver side only) "real" (the RealSet), "encoder" (module or
        None) and "encoder_info".

    Raises:
        CheckpointError: no loadable checkpoint, or weights that do not fit the model code.
        ConfigError: bad classes / class_weights; a refused real set (test split, other classes).
        DataError: the real set's images cannot be read.
    """
    if cfg.translate:
        return _load_translation(cfg)
    from synthgen.checkpoint import load_generator

    try:
        generator, info = load_generator(cfg.checkpoint, use_ema=cfg.use_ema, device="cpu")
    except RuntimeError as exc:  # load_state_dict: weights of a different architecture
        raise CheckpointError(
            f"checkpoint {cfg.checkpoint!r} does not fit the current model code ({str(exc).splitlines()[0]} ...); "
            "it was written by another synthgen version or model config: re-train, or sample with that version"
        ) from exc
    judge = load_filter_judge(cfg, info) if cfg.filter else None
    spec: dict[str, Any] = {
        "model": to_dict(info.config.model),
        "image_shape": list(info.image_shape),
        "state": {k: v.detach().clone() for k, v in generator.state_dict().items()},
    }
    around = None
    if cfg.around:
        from synthgen.sample.around import around_spec, load_run_encoder
        from synthgen.sample.realset import load_real_set

        real = load_real_set(cfg.around, info)
        encoder, encoder_info = load_run_encoder(cfg)
        around = around_spec(cfg, real, info.class_names, encoder_info)
        spec.update(real=real, encoder=encoder, encoder_info=encoder_info)
    upscale = None
    if cfg.upscale:
        from synthgen.sample.upscale import load_upscaler

        spec["upscale"], spec["upscaler"] = load_upscaler(cfg.upscale, info.image_shape)
        upscale = (spec["upscaler"].digest, spec["upscaler"].output_shape)
    plan = make_plan(
        cfg,
        info.digest,
        info.class_names,
        info.image_shape,
        generator.z_dim,
        info.config,
        judge_key=judge["key"] if judge else "",
        around=around,
        upscale=upscale,
    )
    if judge is not None:
        spec["judge"] = judge
    return plan, info, spec


def _load_translation(cfg: SampleConfig) -> tuple[SamplePlan, Any, dict[str, Any]]:
    """``load_for_sampling`` of ``--translate``: the translator, its input images and the plan.

    The spec's "translate" entry ({inputs [N, C_in, H, W] uint8, labels [N], sources [N]}) is what the actors
    translate; "input" (the RealSet) stays on the driver for the manifest and the dry run.
    """
    from synthgen.sample.translate import load_translate_input, translate_spec
    from synthgen.translation import load_translator, translator_inputs

    G, info = load_translator(cfg.checkpoint, use_ema=cfg.use_ema, device="cpu")
    data = load_translate_input(cfg.translate, info)
    spec: dict[str, Any] = {
        "model": to_dict(info.config.model),
        "image_shape": list(info.output_shape),
        "input_shape": list(info.input_shape),
        "state": {k: v.detach().clone() for k, v in G.state_dict().items()},
        "translate": {"inputs": translator_inputs(data.images, info), "labels": data.labels, "sources": data.sources},
        "input": data,
        "translator": info,
    }
    plan = make_plan(
        cfg,
        info.digest,
        data.class_names,
        info.output_shape,
        0,
        info.config,
        translate=translate_spec(cfg, data, info),
    )
    return plan, info, spec


def load_filter_judge(cfg: SampleConfig, info: Any) -> dict[str, Any]:
    """The judge of the checkpoint's data set (cached; trained on its real training split if missing).

    Returns:
        ``judge_spec``: what actors rebuild the judge from, plus ``describe`` (key, accuracy, recipe).

    Raises:
        ConfigError / DataError: the checkpoint's real data cannot be loaded, or its classes differ.
    """
    from synthgen.judge.cache import load_or_train_judge
    from synthgen.sample.filter import judge_spec

    try:
        judge = load_or_train_judge(info.config.data, progress=cfg.progress)
    except SynthgenError as exc:
        raise ConfigError(
            f"filter={cfg.filter} needs the judge of the data the checkpoint was trained on, and it could not "
            f"be loaded or trained: {exc}"
        ) from exc
    if tuple(judge.class_names) != tuple(info.class_names):
        raise ConfigError(
            f"filter={cfg.filter}: the judge's classes {list(judge.class_names)} differ from the "
            f"checkpoint's {list(info.class_names)}; check the checkpoint's data config"
        )
    return {**judge_spec(judge), "describe": judge.describe()}


def check_out_is_folder(out: Location) -> None:
    """Refuse an OUT that is an existing file (pyarrow would fail deep inside the first write).

    Raises:
        ConfigError: OUT, or a folder above it, is an existing file.
    """

    import pyarrow.fs as pafs

    if out.kind() == pafs.FileType.File:
        raise ConfigError(
            f"--out {out.display()} is an existing file, not a folder; pass a folder path (new, empty, or "
            "holding a synthgen dataset to finish), or move the file away"
        )
    if not is_uri(out.uri):  # a local OUT below a file could never be created either
        parent = os.path.dirname(out.root)
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent) if os.path.dirname(parent) != parent else ""
        if parent and not os.path.isdir(parent):
            raise ConfigError(
                f"--out {out.display()} lies below {parent}, which is a file, not a folder; pass a folder path"
            )


def check_output(out: Location, plan: SamplePlan, overwrite: bool) -> bool:
    """Decide whether OUT is empty, a resumable run of ``plan``, or a conflict.

    Returns:
        True when OUT already holds (part of) this exact dataset.

    Raises:
        ShardError: OUT holds a different dataset or foreign files and ``overwrite`` is False.
    """
    check_out_is_folder(out)
    entries = [e for e in out.entries() if not TEMP_RE.match(e)]
    if not entries:
        return False
    try:
        existing = read_plan(out)
    except ShardError:
        if not overwrite:
            raise
        existing = None
    if existing is not None and existing.digest() == plan.digest():
        return True
    if not overwrite:
        if existing is None:
            what = f"files that are not a synthgen dataset ({', '.join(entries[:5])})"
        else:
            what = "a dataset made with a different config (" + "; ".join(plan.differences(existing)[:6]) + ")"
        raise ShardError(
            f"output {out.display()} already holds {what}; pass --overwrite to replace it, or choose another --out"
        )
    for name in OWNED:
        out.delete_dir(name)
        out.delete(name)
    return False


def scan_complete_shards(out: Location, plan: SamplePlan) -> dict[int, dict[str, Any]]:
    """Manifest records of the shards already complete in OUT (checked against plan and manifest).

    Each format handler says which of its files are complete (see its ``completed``): a Parquet
    shard when its footer matches the plan and its sha256 the old manifest's (or, without one, it
    parses); a PNG shard when its index matches the plan and every file it lists exists with the
    listed size. A shard counts when every handler of the format has it; anything else is rewritten.
    """
    try:
        old = {s.index: s for s in read_manifest(out, check=False).shards}
    except ShardError:
        old = {}
    shards = plan.shards()
    found = []
    for handler in handlers_for(plan.format):
        expect: dict[int, FileRef] = {k: s.parts[handler.name] for k, s in old.items() if handler.name in s.parts}
        found.append((handler, handler.completed(out, shards, plan.digest(), expect, bool(plan.filter))))
    return {
        shard.index: shard_record(shard, [(h, parts[shard.index]) for h, parts in found])
        for shard in shards
        if all(shard.index in parts for _, parts in found)
    }


def run_sample(cfg: SampleConfig) -> SampleResult:
    """Sample ``cfg.num_samples`` images into ``cfg.out`` (or finish an interrupted run).

    Raises:
        ConfigError: invalid config, an OUT that is an existing file, or unschedulable resources.
        CheckpointError: no loadable checkpoint.
        ShardError: OUT conflicts with the request (without ``overwrite``) or a shard keeps failing.
    """
    cfg.validate()
    cfg = dataclasses.replace(cfg, out=driver_path(cfg.out))  # the actors write where the driver means
    out = Location(cfg.out)
    check_out_is_folder(out)  # before loading the checkpoint: a wrong --out fails fast
    check_ray_address(cfg.ray_address)  # a dead cluster to join fails in seconds, before anything is written
    plan, info, spec = load_for_sampling(cfg)
    resuming = check_output(out, plan, cfg.overwrite)
    stale = tuple(out.clean_stale_temps())
    if not resuming:
        write_plan(out, plan)
    done = scan_complete_shards(out, plan) if resuming else {}
    missing = [s for s in plan.shards() if s.index not in done]
    if not missing and out.exists(MANIFEST_FILE):
        manifest = read_manifest(out, check=False).raw
        if manifest.get("plan_digest") == plan.digest():
            return SampleResult(cfg.out, manifest, 0, len(done), stale)
    out.delete(MANIFEST_FILE)  # the dataset is incomplete until the new manifest lands
    stats, around = None, None
    fleet_spec = {
        k: spec[k]
        for k in ("model", "image_shape", "input_shape", "state", "judge", "translate", "upscale")
        if k in spec
    }
    if plan.around:
        from synthgen.sample.around import prepare_around

        around = prepare_around(cfg, plan, spec, out)
        fleet_spec["around"] = around.actor_spec
    if missing:
        init_ray(cfg.ray_address)
        stats = _run_with_progress(cfg, plan, fleet_spec, missing)
        done.update(stats.records)
        stale += tuple(out.clean_stale_temps())  # temp files of actors/tasks killed during this run
    records = [done[k] for k in range(plan.num_shards)]
    manifest = build_manifest(
        plan,
        records,
        checkpoint_path=cfg.checkpoint,
        resolved_path=info.path,
        checkpoint_step=info.step,
        sample_config=to_dict(cfg),
        train_config=to_dict(info.config),
        judge=spec["judge"]["describe"] if "judge" in spec else None,
        around=around.describe if around is not None else None,
        translate=_describe_translation(plan, spec) if plan.translate else None,
        upscale=describe_upscaler(cfg.upscale, spec["upscaler"]) if plan.upscale else None,
    )
    write_manifest(out, manifest)
    return SampleResult(cfg.out, manifest, len(missing), plan.num_shards - len(missing), stale, stats)


def _describe_translation(plan: SamplePlan, spec: dict[str, Any]) -> dict[str, Any]:
    """The manifest's "translate" entry: the input set, the translator's domains and how variations differ."""
    info, data = spec["translator"], spec["input"]
    return {
        "input": data.describe,
        "per_image": plan.per_image,
        "variation": plan.variation,
        "model": info.config.model.name,
        "input_shape": list(info.input_shape),
        "source_shape": list(info.source_shape),
        "output_shape": list(info.output_shape),
    }


def _run_with_progress(cfg: SampleConfig, plan: SamplePlan, spec: dict[str, Any], missing: list[Shard]) -> FleetStats:
    total = sum(s.rows for s in missing)
    with image_bar(total, "sample", cfg.progress) as bar:
        t0 = time.perf_counter()
        stats = run_fleet(cfg, plan, spec, missing, synthgen.__version__, on_progress=bar.update)
        bar.set_postfix_str(f"{total / max(time.perf_counter() - t0, 1e-9):.0f} img/s overall")
    return stats
