"""Typed, frozen configs for every stage, loaded from YAML with dotted overrides.

A config is a tree of frozen dataclasses. ``load_config(ExperimentConfig, "x.yaml", ["train.steps=10"])``
reads the YAML with ``yaml.safe_load``, applies ``section.key=value`` overrides (values parsed as YAML
scalars), rejects unknown keys with the list of valid ones, and checks every value's type.

``model.arch`` holds the chosen architecture's own options: each registered model declares a frozen
options dataclass (``synthgen.models.registry``), and ``ModelConfig`` validates ``arch`` against it and
fills in its defaults, so a resolved config always shows every option the model was built with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from synthgen.config_io import (  # re-exported: configs and their machinery load from here
    _deepcopy_dict,
    apply_overrides,
    check_minimums,
    check_ranges,
    config_data,
    dump_yaml,
    from_dict,
    load_config,
    parse_override,
    read_yaml,
    to_dict,
)
from synthgen.errors import ConfigError

__all__ = [
    "DataConfig",
    "CodeConfig",
    "ModelConfig",
    "TrainConfig",
    "RunConfig",
    "ExperimentConfig",
    "model_options_dict",
    "upgrade_legacy_config",
    "apply_overrides",
    "check_minimums",
    "check_ranges",
    "config_data",
    "dump_yaml",
    "from_dict",
    "load_config",
    "parse_override",
    "read_yaml",
    "to_dict",
]


@dataclass(frozen=True)
class DataConfig:
    source: str = "fashion-mnist"  # registered source: fashion-mnist | mnist | imagefolder
    root: str = ""  # data folder; "" = the source's default (Debian's /usr/share/datasets/<name>)
    resolution: int = 28  # square side in pixels; a multiple of 4 (28, 32, 64, ...)
    channels: int = 1  # 1 (grayscale) or 3 (RGB); imagefolder images are converted to this
    max_images: int = 0  # 0 = all; N > 0 = a reproducible class-stratified subset of N training images
    subset_seed: int = 0  # seed that picks which images the max_images / class_counts subset keeps
    skip_bad_files: bool = False  # imagefolder: skip (and count) unreadable files instead of failing
    download: bool = False  # idx sources: fetch with torchvision if root lacks the files (needs internet)
    # training images per class, in class order, e.g. [4000, 2000, ..., 40] for a long tail: a reproducible
    # subset (synthgen.data.subset) picked by subset_seed; [] = none. Exclusive with max_images (it fixes the size)
    class_counts: tuple[int, ...] = ()
    # image -> image models: pairs derived from these images (synthgen.data.pairs): "edges" = A their outlines,
    # B the images (pix2pix); "downsample" = A their antialiased downsample by model.arch.factor, B the images
    # (srgan); "" = none (a second domain comes from data_b:)
    pairs: str = ""
    # "" = every image; "even" / "odd" = the training images whose item index is even / odd (the IDX index, or an
    # imagefolder file's integer name as jobs/make_rgb_dataset.py writes them): two disjoint halves of one set
    # of items, e.g. a translator's B images and the A images it translates (applied before max_images)
    index_half: str = ""

    PAIR_KINDS: ClassVar[tuple[str, ...]] = ("", "edges", "downsample")
    INDEX_HALVES: ClassVar[tuple[str, ...]] = ("", "even", "odd")

    def validate(self) -> None:
        """Check what types alone cannot express (what needs the data itself: ``synthgen.data.subset``).

        Raises:
            ConfigError: naming the key, the bad value and the fix.
        """
        if self.max_images < 0:
            raise ConfigError(f"data.max_images={self.max_images!r} is invalid: must be >= 0 (0 = all)")
        if any(n < 1 for n in self.class_counts):
            raise ConfigError(
                f"data.class_counts={list(self.class_counts)} is invalid: every class needs >= 1 image "
                "(the generator is conditioned on every class); or set [] for no per-class subset"
            )
        if self.class_counts and self.max_images:
            raise ConfigError(
                f"data.class_counts={list(self.class_counts)} and data.max_images={self.max_images} "
                "both pick a subset: class_counts fixes every class's count (the size is their sum); "
                "set data.max_images=0, or data.class_counts=[]"
            )
        if self.pairs not in self.PAIR_KINDS:
            raise ConfigError(
                f"data.pairs={self.pairs!r} is invalid: must be one of {list(self.PAIR_KINDS)} "
                "(edges: pairs of each image's outline and the image; downsample: of its downsample and the image)"
            )
        if self.index_half not in self.INDEX_HALVES:
            raise ConfigError(
                f"data.index_half={self.index_half!r} is invalid: must be one of {list(self.INDEX_HALVES)} "
                "('' = every image; even / odd = the images whose item index is even / odd)"
            )


@dataclass(frozen=True)
class CodeConfig:
    """One InfoGAN latent code of ``model.codes`` (``synthgen.models.codes``)."""

    name: str = ""  # the code's name, used by `synthgen sample --code NAME=VALUE` and the report, e.g. thickness
    kind: str = "continuous"  # continuous (prior U(-1, 1)) | categorical (prior uniform over `size` values)
    size: int = 0  # values of a categorical code (>= 2); 0 for a continuous code


@dataclass(frozen=True)
class ModelConfig:
    name: str = "cdcgan"  # registered model: mlp | dcgan | cdcgan | stylegan
    # the chosen model's own options (its options dataclass, e.g. cdcgan: g_channels, d_channels);
    # missing keys take that model's defaults, unknown keys are rejected
    arch: dict[str, Any] = field(default_factory=dict)
    z_dim: int = 128  # latent size
    loss: str = "hinge"  # registered loss: bce | hinge | wgan-gp
    gp_weight: float = 10.0  # gradient-penalty weight for wgan-gp
    ema_decay: float = 0.995  # generator EMA decay (horizon ~200 steps); the EMA generator is the one sampled
    ema_start: int = 500  # steps before EMA starts tracking (copies G until then)
    diffaugment: str = ""  # comma list of DiffAugment ops: translation,cutout,color ("" = off)
    lecam_weight: float = 0.0  # LeCam D regulariser (Tseng et al. 2021) for small datasets, e.g. 0.3; 0 = off
    r1_gamma: float = 0.0  # R1 penalty (gamma/2 * ||grad D(real)||^2, Mescheder et al. 2018) on D, e.g. 0.01; 0 = off
    r1_interval: int = 16  # lazy R1 (StyleGAN2): applied every this many steps, scaled by it (1 = every step)
    # InfoGAN latent codes (cdcgan, stylegan), e.g. [{name: thickness, kind: continuous},
    # {name: style, kind: categorical, size: 4}]: extra G inputs that a Q head on D must recover; [] = off
    codes: tuple[CodeConfig, ...] = ()
    info_weight: float = 1.0  # weight of the mutual-information loss (InfoGAN's lambda) in G's and D's losses
    # auxiliary classifier on D (AC-GAN; cdcgan, stylegan): weight of its class cross-entropy on real images
    # in D's loss and on G's fakes in G's loss, e.g. 0.5; 0 = off
    aux_weight: float = 0.0
    # mode-seeking regulariser (MSGAN, Mao et al. 2019) in G's loss: pairs of fakes of one class with different z
    # are pushed apart (weight / (image distance / z distance)), against within-class collapse; e.g. 0.1; 0 = off
    mode_seeking_weight: float = 0.0

    # from_dict adds this to its unknown-key message: old flat configs had the widths here
    UNKNOWN_KEY_HINT: ClassVar[str] = (
        "options of one architecture go under model.arch: if {key!r} is one, set model.arch.{key} "
        "(e.g. model: {{name: cdcgan, arch: {{g_channels: 64}}}} or --set model.arch.g_channels=64)"
    )

    def __post_init__(self) -> None:
        # Validate arch against the model's options and store it resolved (every default filled in),
        # so dumps, checkpoints and config comparisons all see the options the model is built with.
        object.__setattr__(self, "arch", model_options_dict(self.name, self.arch))
        if self.codes or self.aux_weight > 0.0:  # lazy: synthgen.models.codes imports torch (never this module)
            from synthgen.models.codes import check_q_head
            from synthgen.models.registry import q_head_models

            check_q_head(self.name, q_head_models(), self.codes, self.aux_weight)


@dataclass(frozen=True)
class TrainConfig:
    # Ray Train DDP workers; 0 = auto (synthgen.train.layout): one per CPU node using all its cores, or one per GPU
    # with use_gpu. The global batch grows with them: pin it to keep a recipe's batch on any cluster
    num_workers: int = 0
    use_gpu: bool = False  # one GPU per worker, nccl backend; the fast paths below turn on by themselves there
    # CPUs reserved per worker (fractional is fine on small machines); 0 = auto: a whole node's CPUs with the auto
    # layout, the node's CPUs shared by the workers placed on it when num_workers is pinned
    cpus_per_worker: float = 0.0
    batch_size: int = 64  # images per worker per step (global batch = batch_size * num_workers)
    steps: int = 5000  # optimizer steps to train (the run ends at exactly this step)
    lr_g: float = 4e-4  # generator Adam learning rate
    lr_d: float = 8e-4  # discriminator Adam learning rate (TTUR: twice G's, Heusel et al. 2017)
    beta1: float = 0.0  # Adam beta1 (0 as in SNGAN/BigGAN hinge training: no momentum lag in the game)
    beta2: float = 0.9  # Adam beta2
    checkpoint_every: int = 500  # steps between checkpoints (a final one is always written)
    sample_every: int = 500  # steps between per-class sample grids
    log_every: int = 50  # steps between progress lines / metrics.jsonl rows
    num_to_keep: int = 3  # checkpoints kept by Ray's CheckpointConfig
    max_failures: int = 1  # worker-group restarts allowed (from the latest checkpoint)
    seed: int = 0  # base seed; rank r seeds with seed + r
    num_threads: int = 0  # torch threads per worker; 0 = max(1, int(cpus_per_worker))
    # Device fast paths of the train step (synthgen.train.fast_paths). "auto" = on for CUDA, off elsewhere:
    # GPU users get the fast path without flags, CPU runs stay bit-identical to the plain step.
    channels_last: bool | str = "auto"  # NHWC G/D weights and image batches: tensor cores' native conv layout
    precision: str = "auto"  # auto | fp32 | bf16: autocast forwards to bfloat16 (about 2x on GPUs); losses stay fp32
    tf32: bool | str = "auto"  # TF32 for fp32 matmuls/convs (CUDA only): ~8x Ampere+ throughput for 10-bit mantissas
    fused_adam: bool | str = "auto"  # one fused Adam kernel per step instead of several; falls back if unsupported
    compile: bool = False  # torch.compile G and D (optional: minutes of compile time first; penalties run eager)
    # wall-clock budget of the step loop in minutes: the run stops (and checkpoints) at the first log_every
    # step past it, summed over resumed attempts; 0 = off. train.steps stays the cap (equal-time comparisons)
    max_minutes: float = 0.0

    FAST_PATH_SWITCHES: ClassVar[tuple[str, ...]] = ("channels_last", "tf32", "fused_adam")  # true | false | auto
    PRECISIONS: ClassVar[tuple[str, ...]] = ("auto", "fp32", "bf16")
    # from_dict adds these to its unknown-key message: the fault keys left the config for synthgen.faults
    UNKNOWN_KEY_HINT: ClassVar[dict[str, str]] = {
        key: f"{key} is a test-only fault, not a config key: set the environment variable "
        f"SYNTHGEN_FAULTS=train.{key}=STEP"
        for key in ("fail_at_step", "nan_at_step")
    }

    def __post_init__(self) -> None:
        # Checked at construction (not only in validate), so every path to a config (YAML, --set, a
        # checkpoint's config) rejects a value the train step could not act on.
        for key in self.FAST_PATH_SWITCHES:
            value = getattr(self, key)
            if not isinstance(value, bool) and value != "auto":
                raise ConfigError(
                    f"train.{key}={value!r} is invalid: choose one of true, false, auto "
                    f"(auto = on for CUDA, off elsewhere), e.g. --set train.{key}=auto"
                )
        if self.precision not in self.PRECISIONS:
            raise ConfigError(
                f"train.precision={self.precision!r} is invalid: choose one of "
                f"{', '.join(self.PRECISIONS)} (auto = bf16 on CUDA, fp32 elsewhere), "
                "e.g. --set train.precision=bf16"
            )


@dataclass(frozen=True)
class RunConfig:
    name: str = "fashion_mnist"  # run name: its folder is <storage_path>/<name>
    storage_path: str = "runs"  # local or shared folder, or s3:// / gs:// URI, holding run folders
    # "" = join RAY_ADDRESS if set, else start a fresh local Ray instance (never the cluster a `ray start` here left
    # in /tmp/ray/ray_current_cluster: ask for it with "auto"); "auto" / "host:port" = join, failing fast if dead
    ray_address: str = ""


# dotted key -> its smallest allowed value (and what that value means), checked by ExperimentConfig.validate
EXPERIMENT_MINIMUMS: dict[str, int | tuple[int, str]] = {
    "model.z_dim": 1,
    "model.lecam_weight": (0, " (0 = off)"),
    "model.r1_gamma": (0, " (0 = off)"),
    "model.r1_interval": 1,
    "model.info_weight": (0, ", e.g. 1.0 (used only with model.codes)"),
    "model.aux_weight": (0, ", e.g. 0.5 (0 = no auxiliary classifier)"),
    "model.mode_seeking_weight": (0, ", e.g. 0.1 (0 = off)"),
    "train.num_workers": (0, " (0 = auto: one per CPU node, or one per GPU)"),
    "train.batch_size": 1,
    "train.steps": 1,
    "train.max_minutes": (0, " (0 = no time budget)"),
    "train.checkpoint_every": 1,
    "train.sample_every": 1,
    "train.log_every": 1,
    "train.num_to_keep": 1,
    "train.max_failures": 0,
}


@dataclass(frozen=True)
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)  # real images to learn from
    model: ModelConfig = field(default_factory=ModelConfig)  # networks, loss, EMA, augmentation
    train: TrainConfig = field(default_factory=TrainConfig)  # distributed training loop
    run: RunConfig = field(default_factory=RunConfig)  # where outputs go
    # image -> image models (pix2pix, cyclegan): domain B, the images data: is translated into (the same keys
    # as data:); null = none (noise models, or pix2pix with data.pairs)
    data_b: DataConfig | None = None

    def validate(self) -> None:
        """Check value ranges that types alone cannot express.

        Raises:
            ConfigError: naming the key, the bad value and the allowed range.
        """
        d, m, t = self.data, self.model, self.train
        d.validate()
        check_ranges(
            [
                (
                    d.resolution >= 4 and d.resolution % 4 == 0,
                    "data.resolution",
                    d.resolution,
                    "a multiple of 4, e.g. 28 or 32",
                ),
                (d.channels in (1, 3), "data.channels", d.channels, "1 or 3"),
                (0.0 <= m.ema_decay < 1.0, "model.ema_decay", m.ema_decay, "in [0, 1)"),
                (t.cpus_per_worker >= 0, "train.cpus_per_worker", t.cpus_per_worker, ">= 0 (0 = auto)"),
                (
                    self.run.name.strip() != "" and "/" not in self.run.name,
                    "run.name",
                    self.run.name,
                    "a non-empty name without '/'",
                ),
            ]
        )
        check_minimums(self, EXPERIMENT_MINIMUMS)
        from synthgen.models.registry import get_model_spec

        spec = get_model_spec(m.name)
        options = spec.options(**m.arch)
        if hasattr(options, "check_with_train"):  # the model's own checks that need the train section too
            options.check_with_train(t)
        self._check_domains(spec)

    def _check_domains(self, spec: Any) -> None:
        """A translation model has a second domain (``data_b`` or ``data.pairs``); a noise model has none."""
        d, b, name = self.data, self.data_b, self.model.name
        if not spec.translation:
            if d.pairs or b is not None:
                raise ConfigError(
                    f"data.pairs / data_b are for models that translate images (pix2pix, cyclegan); "
                    f"model.name={name!r} draws from noise: drop them or choose such a model"
                )
            return
        from synthgen.models.registry import upscale_factor

        factor = upscale_factor(name, self.model.arch)
        if (d.pairs == "downsample") != (factor > 1):
            raise ConfigError(
                f"data.pairs=downsample pairs each image with its downsample, for an upscaler: model.name={name!r} "
                "is not one (use model.name=srgan)"
                if factor == 1
                else f"model.name={name!r} upscales by model.arch.factor={factor}: set data.pairs=downsample (pairs "
                "of each image of data: and its downsample)"
            )
        if b is None and not (d.pairs and spec.paired):
            need = "data_b: (B's images) or data.pairs=edges" if spec.paired else "data_b: (B's images)"
            raise ConfigError(f"model.name={name!r} translates domain A (data:) into domain B: set {need}")
        if b is not None and d.pairs:
            raise ConfigError("data.pairs derives domain B from data:, so data_b must not be set too; drop one")
        if b is not None:
            b.validate()
            if spec.paired and (d.source, b.source) != ("imagefolder", "imagefolder"):
                raise ConfigError(
                    f"model.name={name!r} trains on pairs: data: and data_b: must both be imagefolders whose files "
                    "match by relative path (or set data.pairs=edges and drop data_b)"
                )


def model_options_dict(name: str, arch: Any) -> dict[str, Any]:
    """Validate ``arch`` against model ``name``'s options dataclass; return it with defaults filled in.

    Args:
        name: a registered model name.
        arch: the ``model.arch`` mapping (may be partial or empty).

    Returns:
        Every option of the model as a plain dict.

    Raises:
        ConfigError: unknown model, unknown option (valid ones listed), wrong type or value.
    """
    # Lazy: the model registry imports torch; synthgen.models never imports this module, so no cycle.
    from synthgen.models.registry import get_model_spec

    options_cls = get_model_spec(name).options
    try:
        return to_dict(from_dict(options_cls, arch, "model.arch"))
    except ConfigError as exc:
        raise ConfigError(f"{exc} (model.arch holds the options of model.name={name!r})") from exc


LEGACY_ARCH_KEYS = ("g_channels", "d_channels")  # flat model keys of configs saved before model.arch
# test-only fault keys that configs saved before synthgen.faults carry (always at their off value, -1)
RETIRED_TRAIN_KEYS = ("fail_at_step", "nan_at_step")


def upgrade_legacy_config(data: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of a saved ExperimentConfig dict in today's shape.

    For artifacts written before today's keys (checkpoints, shard manifests, honest-generator runs): flat
    model widths move under ``model.arch`` and the retired fault keys of ``train`` are dropped. User YAML is
    not upgraded, it is rejected with a message naming the new key. Legacy keys the model does not declare
    (mlp ignored the widths) are dropped.
    """
    out = _deepcopy_dict(data)
    train = out.get("train")
    if isinstance(train, dict):
        for key in RETIRED_TRAIN_KEYS:
            train.pop(key, None)
    model = out.get("model")
    if not isinstance(model, dict) or not any(key in model for key in LEGACY_ARCH_KEYS):
        return out
    from synthgen.models.registry import get_model_spec

    declared = {f.name for f in dataclasses.fields(get_model_spec(model.get("name", ModelConfig.name)).options)}
    arch = dict(model.get("arch") or {})
    for key in LEGACY_ARCH_KEYS:
        if key in model:
            value = model.pop(key)
            if key in declared:
                arch.setdefault(key, value)
    model["arch"] = arch
    return out
