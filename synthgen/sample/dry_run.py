"""``synthgen sample --dry-run``: the resolved config and the plan (class counts, shards, and what --around or
--translate adds), computed exactly as a real run computes them, with nothing written."""

from __future__ import annotations

from synthgen.cli_args import plan_skipped
from synthgen.config import dump_yaml
from synthgen.sample.config import SampleConfig


def print_dry_run(cfg: SampleConfig, smoke_test: bool = False) -> int:
    """Print the resolved config and the plan (nothing is written); returns 0.

    Raises:
        ConfigError / CheckpointError / DataError: what resolving the plan raises (a refused run stays refused).
    """
    print("# resolved sample config")
    print(dump_yaml(cfg), end="")
    skipped = plan_skipped(cfg.checkpoint, smoke_test)
    if skipped:
        print(f"# plan not computed: {skipped}")
        return 0
    from synthgen.sample.run import load_for_sampling

    plan, info, spec = load_for_sampling(cfg)
    print("# plan (nothing written)")
    print(f"checkpoint: {info.path} (step {info.step}, sha256 {info.digest[:16]}...)")
    print(
        f"shards: {plan.num_shards} of up to {plan.images_per_shard} images ({plan.num_samples} in all), "
        f"image shape {list(plan.image_shape)}, format {plan.format}"
    )
    print(f"per class: {dict(zip(plan.class_names, plan.class_counts))}")
    if plan.around:
        _print_around_plan(cfg, plan, spec)
    if plan.translate:
        _print_translate_plan(plan, spec)
    if plan.upscale:
        up = spec["upscaler"]
        print(
            f"upscale: {up.path} (step {up.step}, sha256 {up.digest[:16]}...): {up.config.model.name} "
            f"{list(plan.generated_shape)} -> {list(plan.image_shape)} in the same actor call"
        )
    if plan.codes:
        print(f"codes fixed for every sample: {plan.codes}")
    if plan.filter:
        print(
            f"filter: {plan.filter} (judge {plan.filter_judge}, up to {plan.filter_max_candidates} latents per image)"
        )
    print(f"plan digest: {plan.digest()}")
    return 0


def _print_around_plan(cfg: SampleConfig, plan: object, spec: dict) -> None:
    """The --around part of the dry-run plan: real set, variations per image, inversion, encoder."""
    from synthgen.sample.around import inversion_chunks, variations_per_image

    real = spec["real"]
    d = real.describe
    v = variations_per_image(real.labels, plan.class_counts, plan.around_class_images)  # [N_real]
    print(
        f"around: {d['kind']} {d['spec']} (source {d['source']}, root {d['root'] or 'default'}, split {d['split']}, "
        f"max_images {d['max_images']}, class_counts {d.get('class_counts') or 'none'}, subset_seed "
        f"{d['subset_seed']}): {len(real)} real images, sha256 "
        f"{d['digest'][:16]}..."
    )
    print(f"real images per class: {dict(zip(plan.class_names, plan.around_class_images))}")
    per_class = {
        name: sorted({int(x) for x in v[real.labels == c]})
        for c, name in enumerate(plan.class_names)
        if plan.around_class_images[c]
    }
    print(f"variations per image (per class): {per_class}; sigma {plan.sigma:g}")
    enc = spec["encoder_info"]
    inv = plan.inversion
    how = (
        f"encoder {enc['path']} (sha256 {enc['digest'][:12]}...) + {inv['steps']} Adam steps"
        if enc["used"]
        else f"{inv['restarts']} prior restarts + {inv['steps']} Adam steps (no encoder)"
    )
    print(
        f"inversion: {int((v > 0).sum())} images in {len(inversion_chunks(v, plan.inversion_chunk))} chunks of "
        f"{plan.inversion_chunk}; {how}, lr {inv['lr']:g}, prior weight {inv['prior_weight']:g}"
    )


def _print_translate_plan(plan: object, spec: dict) -> None:
    """The --translate part of the dry-run plan: the input set, the translator's domains and the variations."""
    data, info = spec["input"], spec["translator"]
    d = data.describe
    print(
        f"translate: {d['kind']} {d['spec']} (split {d['split']}): {len(data)} input images "
        f"{list(info.source_shape)}, sha256 {d['digest'][:16]}..."
    )
    print(f"input images per class: {dict(zip(plan.class_names, data.class_images()))}")
    how = {
        "none": "one deterministic translation each",
        "dropout": "dropout masks seeded per chunk of sample ids",
        "noise": "a noise vector per sample, seeded per chunk of sample ids",
        "edges+dropout": "variation 0 renders the outline, j >= 1 an elastic deformation of it; dropout on",
    }[plan.variation]
    print(
        f"{info.config.model.name}: {list(info.input_shape)} -> {list(info.output_shape)}; {plan.per_image} "
        f"variation(s) per image ({how})"
    )
