"""The sampling stage's config: one frozen dataclass, loaded like every other synthgen config.

``load_config(SampleConfig, "jobs/configs/sample.yaml", ["num_samples=1000"])`` reads a flat YAML
mapping (the keys below) and applies ``key=value`` overrides. The fields split in two groups:

* what the dataset *is* (checkpoint, seed, num_samples, classes, class_weights, truncation, use_ema,
  filter, filter_max_candidates, codes, format, images_per_shard, chunk_size, row_group_size,
  png_compress_level, and with ``around`` the real set, per_image, sigma, the inversion settings and the
  encoder): they enter the plan
  digest, and a different value into a non-empty OUT is refused unless ``overwrite``;
* how it is *made* (actors, batch size, CPUs, queues, retries, progress): changing them never
  changes a byte of the output, so a re-run may use different values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from synthgen.config import check_ranges
from synthgen.errors import ConfigError
from synthgen.judge.config import FilterSpec
from synthgen.shards.formats import FORMATS  # derived from the format handler table

DEFAULT_NUM_SAMPLES = 10000  # num_samples=0 (auto) of prior sampling
ENCODER_CHOICES = ("auto", "none")  # or a run / encoder folder
ACTOR_SCHEDULING = ("default", "spread")  # Ray scheduling strategies of the generator actors: DEFAULT, SPREAD
ENCODE_PLACES = ("task", "actor")  # where a generated batch is PNG-encoded (synthgen.sample.fleet)


@dataclass(frozen=True)
class SampleConfig:
    checkpoint: str = ""  # run folder (latest checkpoint), checkpoint-NNNNNN folder, or URI (s3://, gs://, file://)
    out: str = ""  # output folder or pyarrow URI; holds parquet/, png/, png_index/, plan.json, manifest.json
    num_samples: int = 0  # N: sample_ids 0..N-1; 0 = auto: 10000, or per_image x real images with --around
    format: str = "parquet"  # parquet | png | both
    images_per_shard: int = 10000  # rows per shard (the last shard may be shorter)
    seed: int = 0  # keys every latent and the label permutation; image i = f(checkpoint, seed, i)
    classes: str = "all"  # "all" or a comma list of class names or indices to sample (others get 0)
    # auto (uniform; with --around: the real set's) | uniform | data (training-set / real-set class frequencies) |
    # path to a YAML/JSON {name: weight}
    class_weights: str = "auto"
    truncation: float = 1.0  # psi in (0, 1]: latents pulled toward their centre (z: 0, W: class mean); 1.0 = off
    use_ema: bool = True  # sample the EMA generator (recommended) instead of the raw one
    # null / "" = keep every image; judge:T = keep images the judge gives >= T for their label (e.g. judge:0.9)
    filter: FilterSpec | None = None
    filter_max_candidates: int = 16  # judge filter: latents tried per image before the best-scoring one is kept
    # --code NAME=VALUE (repeatable): fix an InfoGAN code of the checkpoint's generator for every sample, e.g.
    # ["style=2", "thickness=0.5"]; codes not named keep their per-sample prior draws; [] = none fixed
    codes: tuple[str, ...] = ()
    chunk_size: int = 64  # canonical forward batch aligned to sample ids: makes CPU bytes batch-size independent
    row_group_size: int = 1000  # parquet rows per row group
    png_compress_level: int = 6  # zlib level for PNG (0-9); fixed so bytes are reproducible
    num_actors: int = 2  # generator actors (each loads the generator once)
    batch_size: int = 512  # sample ids per actor call; a multiple of chunk_size
    use_gpu: bool = False  # GPU actors (one forward per batch; equal to CPU output up to float tolerance)
    cpus_per_actor: float = 0.5  # CPUs reserved per generator actor; fractional so encoders still fit on 2 cores
    gpus_per_actor: float = 1.0  # GPUs per actor when use_gpu
    actor_scheduling: str = (
        "default"  # default (Ray's: this node until half busy) | spread (over as many nodes as possible)
    )
    cpus_per_encoder: float = 0.5  # CPUs reserved per PNG-encode / shard-write task (their own pool of workers)
    # where each batch is PNG-encoded and its PNG-tree files written: task (a Ray task beside the actors; the faster
    # one on the 2-core benchmark machine, benchmarks/README.md) | actor (right after the forward, in the actor's
    # process). The bytes are the same either way
    encode_in: str = "task"
    torch_threads: int = 0  # torch intra-op threads per actor; 0 = max(1, int(cpus_per_actor))
    max_batches_in_flight: int = 0  # generated-but-not-encoded batches held at once; 0 = 4 * num_actors
    max_shards_in_flight: int = 0  # shards started but not yet written; 0 = num_actors + 2
    max_actor_restarts: int = 3  # Ray restarts of a crashed actor (its calls are retried on the new one)
    max_shard_retries: int = 2  # extra attempts of a failed shard before the job fails loudly
    overwrite: bool = False  # allow replacing a dataset made with a different config in OUT
    # "" = join RAY_ADDRESS if set, else start a fresh local Ray instance (never the cluster a `ray start` here left
    # in /tmp/ray/ray_current_cluster: ask for it with "auto"); "auto" / "host:port" = join, failing fast if dead
    ray_address: str = ""
    progress: bool = True  # tqdm progress bar (images/s, ETA) on the driver
    # --- around real images (synthgen.sample.around): image (i, j) = G(z_i + sigma * eps(seed, i, j), y_i) ---
    around: str = ""  # "" = prior draws; "train" = the checkpoint's own training images; or a data-config YAML
    per_image: int = 0  # variations per real / input image; 0 = auto: 8 with --around, 1 with --translate
    sigma: float = 0.7  # latent noise around each inverted image (0 = the reconstructions themselves)
    inversion_steps: int = 300  # Adam steps per real image after the best prior restart (no encoder)
    inversion_lr: float = 0.05  # Adam learning rate on z
    inversion_restarts: int = 8  # prior draws tried per real image before optimising (no encoder)
    inversion_prior_weight: float = 0.01  # weight of the mean(z^2) penalty that keeps z where the prior has mass
    inversion_chunk: int = 256  # real images per inversion call and per OUT/inversion/chunk-NNNNNN.npz file
    encoder: str = "auto"  # auto = the run's encoder when it has one | none = optimisation only | encoder folder
    encoder_steps: int = 20  # Adam steps per real image after the encoder's start E(x, y)
    # Adam learning rate of those steps: smaller than inversion_lr, which is sized to travel from a random
    # restart; from the encoder's start, large steps first throw away what it predicted
    encoder_lr: float = 0.01
    # --- translating images with a pix2pix / cyclegan checkpoint (synthgen.sample.translate) ---
    translate: str = ""  # "" = off | train | test (domain A split) | data-config YAML | ImageFolder | synthgen dataset
    # an srgan run / checkpoint: every image the noise generator makes is upscaled by it in the same actor call
    # (the cascade: a small class GAN + one upscaler); "" = off
    upscale: str = ""

    def validate(self) -> None:
        """Check value ranges that types alone cannot express.

        Raises:
            ConfigError: naming the key, the bad value and the allowed range.
        """
        checks = [
            (
                self.checkpoint.strip() != "",
                "checkpoint",
                self.checkpoint,
                "a run folder, checkpoint folder or URI (--checkpoint)",
            ),
            (self.out.strip() != "", "out", self.out, "an output folder or URI (--out)"),
            (self.num_samples >= 0, "num_samples", self.num_samples, ">= 1, or 0 = auto"),
            (self.format in FORMATS, "format", self.format, f"one of {list(FORMATS)}"),
            (self.images_per_shard >= 1, "images_per_shard", self.images_per_shard, ">= 1"),
            (0 <= self.seed < 2**63, "seed", self.seed, "in [0, 2**63)"),
            (self.classes.strip() != "", "classes", self.classes, "'all' or a comma list of class names/indices"),
            (
                self.class_weights.strip() != "",
                "class_weights",
                self.class_weights,
                "uniform, data or a YAML/JSON file",
            ),
            (0.0 < self.truncation <= 1.0, "truncation", self.truncation, "in (0, 1] (1.0 = off)"),
            (self.filter_max_candidates >= 1, "filter_max_candidates", self.filter_max_candidates, ">= 1, e.g. 16"),
            (self.chunk_size >= 1, "chunk_size", self.chunk_size, ">= 1"),
            (self.row_group_size >= 1, "row_group_size", self.row_group_size, ">= 1"),
            (0 <= self.png_compress_level <= 9, "png_compress_level", self.png_compress_level, "in 0..9"),
            (self.num_actors >= 1, "num_actors", self.num_actors, ">= 1"),
            (
                self.batch_size >= 1 and self.batch_size % self.chunk_size == 0,
                "batch_size",
                self.batch_size,
                f"a positive multiple of chunk_size={self.chunk_size}, e.g. {self.chunk_size * 8}",
            ),
            (self.cpus_per_actor > 0, "cpus_per_actor", self.cpus_per_actor, "> 0 (fractional is fine)"),
            (self.gpus_per_actor > 0, "gpus_per_actor", self.gpus_per_actor, "> 0"),
            (
                self.actor_scheduling in ACTOR_SCHEDULING,
                "actor_scheduling",
                self.actor_scheduling,
                f"one of {list(ACTOR_SCHEDULING)}",
            ),
            (self.cpus_per_encoder > 0, "cpus_per_encoder", self.cpus_per_encoder, "> 0 (fractional is fine)"),
            (self.encode_in in ENCODE_PLACES, "encode_in", self.encode_in, f"one of {list(ENCODE_PLACES)}"),
            (self.torch_threads >= 0, "torch_threads", self.torch_threads, ">= 0 (0 = from cpus_per_actor)"),
            (self.max_batches_in_flight >= 0, "max_batches_in_flight", self.max_batches_in_flight, ">= 0 (0 = auto)"),
            (self.max_shards_in_flight >= 0, "max_shards_in_flight", self.max_shards_in_flight, ">= 0 (0 = auto)"),
            (self.max_actor_restarts >= 0, "max_actor_restarts", self.max_actor_restarts, ">= 0"),
            (self.max_shard_retries >= 0, "max_shard_retries", self.max_shard_retries, ">= 0"),
        ]
        check_ranges(checks + self._around_checks())
        parse_code_values(self.codes)
        self._check_around_mode()
        self._check_translate_mode()

    def _around_checks(self) -> list[tuple[bool, str, object, str]]:
        return [
            (self.per_image >= 0, "per_image", self.per_image, ">= 1, e.g. 8 (0 = auto)"),
            (self.sigma >= 0, "sigma", self.sigma, ">= 0, e.g. 0.7 (0 = the reconstructions)"),
            (self.inversion_steps >= 0, "inversion_steps", self.inversion_steps, ">= 0, e.g. 300"),
            (self.inversion_lr > 0, "inversion_lr", self.inversion_lr, "> 0, e.g. 0.05"),
            (self.inversion_restarts >= 1, "inversion_restarts", self.inversion_restarts, ">= 1, e.g. 8"),
            (self.inversion_prior_weight >= 0, "inversion_prior_weight", self.inversion_prior_weight, ">= 0"),
            (self.inversion_chunk >= 1, "inversion_chunk", self.inversion_chunk, ">= 1, e.g. 256"),
            (self.encoder.strip() != "", "encoder", self.encoder, "auto, none or an encoder folder"),
            (self.encoder_steps >= 0, "encoder_steps", self.encoder_steps, ">= 0, e.g. 20"),
            (self.encoder_lr > 0, "encoder_lr", self.encoder_lr, "> 0, e.g. 0.01"),
        ]

    def _check_around_mode(self) -> None:
        """Refuse ``around`` values and combinations that cannot make an honest dataset (before any loading).

        Raises:
            ConfigError: --around test (evaluation data), a missing data-config file, or a prior-only option.
        """
        if not self.around:
            return
        if self.around.strip().lower() == "test":
            raise ConfigError(
                "around='test' is refused: varying the test split's images would leak evaluation data "
                "into training data; use --around train or a data config of a training split"
            )
        if self.around != "train" and not os.path.isfile(self.around):
            raise ConfigError(
                f"around={self.around!r} is neither 'train' (the checkpoint's own training images) nor "
                "an existing data-config YAML (DataConfig keys, e.g. source: imagefolder, root: ...)"
            )
        if self.filter:
            raise ConfigError(
                f"filter={self.filter} cannot be combined with --around: each variation keeps its "
                "real image's label; drop --filter"
            )
        if self.codes:
            raise ConfigError(
                f"codes={list(self.codes)} fix InfoGAN codes of prior draws; with --around each "
                "variation keeps its inverted image's latent: drop --code"
            )
        if self.truncation != 1.0:
            raise ConfigError(
                f"truncation={self.truncation!r} applies to prior draws only; with --around, "
                "--sigma sets how far variations go: drop --truncation"
            )

    def _check_translate_mode(self) -> None:
        """Refuse ``translate`` values and combinations that make no sense (before any loading).

        Raises:
            ConfigError: a missing DATA path, or an option of noise sampling or of --around.
        """
        if not self.translate:
            return
        if self.upscale:
            raise ConfigError(
                f"upscale={self.upscale!r} cannot be combined with --translate: --upscale upscales what a noise "
                "generator draws; to upscale existing images give the srgan checkpoint with --upscale-from DATA"
            )
        if self.translate not in ("train", "test") and not os.path.exists(self.translate):
            raise ConfigError(
                f"translate={self.translate!r} is neither train / test (the checkpoint's domain A data) nor an "
                "existing data-config YAML, ImageFolder root or synthgen dataset folder"
            )
        others = [
            (self.around, f"around={self.around!r}", "--around varies a noise generator's inversions"),
            (self.filter, f"filter={self.filter}", "the judge filters draws from noise"),
            (self.codes, f"codes={list(self.codes)}", "InfoGAN codes belong to noise generators"),
            (self.truncation != 1.0, f"truncation={self.truncation!r}", "truncation applies to prior draws"),
            (self.classes != "all", f"classes={self.classes!r}", "every input image is translated"),
            (self.class_weights != "auto", f"class_weights={self.class_weights!r}", "each row keeps its input's label"),
        ]
        for is_set, text, why in others:
            if is_set:
                raise ConfigError(f"{text} cannot be combined with --translate ({why}); drop it")

    @property
    def variations(self) -> int:
        """per_image resolved: 0 = auto = 8 with --around, 1 with --translate."""
        return self.per_image or (1 if self.translate else 8)

    @property
    def prior_num_samples(self) -> int:
        """num_samples of prior sampling, resolved (0 = auto = 10000)."""
        return self.num_samples or DEFAULT_NUM_SAMPLES

    @property
    def batches_in_flight(self) -> int:
        """Resolved bound on generated-but-not-encoded batches (memory stays flat)."""
        return self.max_batches_in_flight or 4 * self.num_actors

    @property
    def shards_in_flight(self) -> int:
        """Resolved bound on shards started but not yet written."""
        return self.max_shards_in_flight or self.num_actors + 2

    @property
    def threads(self) -> int:
        """Resolved torch intra-op threads per actor (same in every actor: part of CPU determinism)."""
        return self.torch_threads or max(1, int(self.cpus_per_actor))


def parse_code_values(texts: tuple[str, ...] | list[str]) -> dict[str, float]:
    """``--code NAME=VALUE`` strings to {name: value} (names and ranges are checked against the model later).

    Raises:
        ConfigError: an entry without ``=``, a value that is not a number, or a name given twice.
    """
    out: dict[str, float] = {}
    for text in texts:
        name, sep, raw = str(text).partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(
                f"--code {text!r} is invalid: use NAME=VALUE, e.g. --code style=2 or --code thickness=0.5"
            )
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(
                f"--code {text!r} is invalid: the value must be a number, e.g. --code {name}=0.5"
            ) from None
        if name in out:
            raise ConfigError(f"--code {name} is given twice ({out[name]:g} and {value:g}): give each code once")
        out[name] = value
    return out
