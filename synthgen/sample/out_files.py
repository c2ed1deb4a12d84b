"""``OUT/plan.json`` (written first) and the content of ``OUT/manifest.json`` (written last).

``plan.json`` pins the dataset a folder is being filled with, so a re-run can resume it or refuse a
conflicting config. ``manifest.json`` exists only when every shard is complete; its format, reader
and writer live in ``synthgen.shards.manifest`` (which lists its keys); this module fills in what
the sampler knows:

    checkpoint             {path (as given), resolved_path, digest (sha256 of model.pt), step}
    seed, plan_digest, plan
    config                 {"sample": resolved SampleConfig, "train": the checkpoint's ExperimentConfig}
    filter                 judge-filtered datasets only: {spec, threshold, max_candidates, judge (key,
                           path, real test accuracy, recipe), candidates (latents drawn in all),
                           acceptance_rate (images / candidates), below_threshold (images kept as the
                           best of max_candidates because none passed)}
    codes                  generators with InfoGAN codes, or plans with --code: {model: the checkpoint's
                           model.codes, fixed: {name: value} of --code (the other codes are per-sample draws)}
    around                 --around datasets only: {real: {kind (imagefolder | idx), spec (train or the YAML),
                           source, root, split, max_images, subset_seed, size, digest (sha256 of the real
                           images and labels), data}, per_image, sigma, class_weights, class_images,
                           images_varied, inversion: {steps, lr, restarts, prior_weight, encoder: {used,
                           path, digest}, chunk, chunks}, reconstruction_mse (mean pixel mse of G(z_i, y_i)
                           vs image i, pixels in [-1, 1]), start_mse (the same before optimising)}
    translate              --translate datasets only: {input: {kind (imagefolder | idx | synthgen), spec, split,
                           size, digest, data}, per_image, variation, model, input_shape, source_shape,
                           output_shape}
    upscale                --upscale datasets only: {checkpoint: {path, resolved_path, digest, step}, model, data (the
                           upscaler's training data: its full-size images), input_shape, output_shape}
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import synthgen
from synthgen.errors import ShardError
from synthgen.sample.plan import SamplePlan
from synthgen.shards.layout import PLAN_FILE
from synthgen.shards.manifest import IMAGEFOLDER_NOTE, MANIFEST_VERSION
from synthgen.storage import Location


def utc_now() -> str:
    """Current UTC time, ISO 8601 with a Z suffix."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def write_plan(out: Location, plan: SamplePlan) -> None:
    """Write ``plan.json`` atomically."""
    data = {"plan_digest": plan.digest(), "plan": plan.to_dict(), "synthgen_version": synthgen.__version__}
    out.write_bytes(PLAN_FILE, (json.dumps(data, indent=2) + "\n").encode())


def read_plan(out: Location) -> SamplePlan | None:
    """The plan recorded in OUT, or None if there is none.

    Raises:
        ShardError: ``plan.json`` exists but is unreadable.
    """
    if not out.exists(PLAN_FILE):
        return None
    try:
        return SamplePlan.from_dict(json.loads(out.read_bytes(PLAN_FILE))["plan"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ShardError(
            f"{out.display(PLAN_FILE)} is unreadable ({exc}); pass --overwrite to start this output folder afresh"
        ) from exc


def build_manifest(
    plan: SamplePlan,
    records: list[dict[str, Any]],
    *,
    checkpoint_path: str,
    resolved_path: str,
    checkpoint_step: int,
    sample_config: dict[str, Any],
    train_config: dict[str, Any],
    judge: dict[str, Any] | None = None,
    around: dict[str, Any] | None = None,
    translate: dict[str, Any] | None = None,
    upscale: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the manifest of a complete dataset (``records`` sorted by shard index).

        ``judge`` (the filtering judge's description) is required for a filtered plan, ``around`` (the real set,
        inversion settings and reconstruction error: ``synthgen.sample.around.prepare_around``) for an --around plan,
        ``translate`` (the input set and the translator's domains) for a --translate plan, ``upscale`` (the upscaler
    checkpoint and its shapes) for an --upscale plan.

        Raises:
            ValueError: an --around or --translate plan without its description (a bug upstream).
    """
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "synthgen_version": synthgen.__version__,
        "created": utc_now(),
        "total": plan.num_samples,
        "per_class": dict(zip(plan.class_names, plan.class_counts)),
        "class_counts": list(plan.class_counts),
        "class_names": list(plan.class_names),
        "label_dirs": dict(zip(plan.class_names, plan.label_dirs)),
        "imagefolder_note": IMAGEFOLDER_NOTE,
        "image_shape": list(plan.image_shape),
        "format": plan.format,
        "images_per_shard": plan.images_per_shard,
        "num_shards": plan.num_shards,
        "shards": records,
        "checkpoint": {
            "path": checkpoint_path,
            "resolved_path": resolved_path,
            "digest": plan.checkpoint_digest,
            "step": checkpoint_step,
        },
        "seed": plan.seed,
        "plan_digest": plan.digest(),
        "plan": plan.to_dict(),
        "config": {"sample": sample_config, "train": train_config},
    }
    model_codes = list((train_config.get("model") or {}).get("codes") or [])
    if model_codes or plan.codes:
        manifest["codes"] = {"model": model_codes, "fixed": dict(plan.codes)}
    if plan.filter:
        manifest["filter"] = filter_summary(plan, records, judge)
    if plan.around:
        if around is None:
            raise ValueError("an --around plan needs its around description for the manifest")
        manifest["around"] = around
    if plan.translate:
        if translate is None:
            raise ValueError("a --translate plan needs its translate description for the manifest")
        manifest["translate"] = translate
    if plan.upscale:
        if upscale is None:
            raise ValueError("an --upscale plan needs its upscale description for the manifest")
        manifest["upscale"] = upscale
    return manifest


def filter_summary(plan: SamplePlan, records: list[dict[str, Any]], judge: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest's ``filter`` entry: the filter, its judge and the totals of the shards' statistics."""
    stats = [r.get("filter") or {} for r in records]
    candidates = sum(int(s.get("candidates", 0)) for s in stats)
    return {
        "spec": plan.filter.to_text(),
        "threshold": plan.filter.threshold,
        "max_candidates": plan.filter_max_candidates,
        "judge": judge or {"key": plan.filter_judge},
        "candidates": candidates,
        "acceptance_rate": plan.num_samples / candidates if candidates else None,
        "below_threshold": sum(int(s.get("below_threshold", 0)) for s in stats),
    }
