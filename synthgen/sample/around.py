"""``synthgen sample --around``: sample ids -> (real image, variation), and the distributed, resumable inversion.

Sample ids list the real set's images in its fixed order, each followed by its variations:
real image ``i`` owns ids ``[offset_i, offset_i + v_i)`` and id ``offset_i + j`` is
``G(z_i + sigma * eps(seed, i, j), y_i)`` (``synthgen.invert.inversion.neighbour_latents``).

Variations per image (``v_i``): the per-class totals ``T_c`` are exact. By default (``class_weights=auto``
or ``data``) ``T_c = per_image * n_c`` for the ``n_c`` real images of class c; with ``uniform`` or a weights
file, the total ``per_image * n`` is split over the classes by the weights (largest-remainder rounding), so
rare classes get more variations per image. Inside class c every image gets ``T_c // n_c`` and the first
``T_c % n_c`` of them (in real-set order) one more. ``--classes`` keeps only the images of those classes.

Inversion: the images with ``v_i > 0`` are cut into chunks of ``inversion_chunk`` (in real-set order); each
chunk is inverted as one batch by an actor (restarts counter-based per image, or the encoder's start), which
writes ``OUT/inversion/chunk-NNNNNN.npz`` (ids, latents, per-image errors, plan digest) atomically. A re-run
reuses every chunk file of its plan, so a killed actor or driver loses at most the chunks in flight.
"""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthgen import faults
from synthgen.errors import ConfigError, ShardError
from synthgen.log import image_bar
from synthgen.sample.actors import LoadsOnFirstCall, actor_setup, box_spec
from synthgen.sample.config import SampleConfig
from synthgen.sample.plan import AroundSpec, allocate_counts, resolve_class_weights, resolve_classes
from synthgen.sample.realset import RealSet
from synthgen.storage import Location

INVERSION_DIR = "inversion"  # OUT/inversion/chunk-NNNNNN.npz


def chunk_file(index: int) -> str:
    """Path relative to OUT of inversion chunk ``index``."""
    return f"{INVERSION_DIR}/chunk-{index:06d}.npz"


def around_counts(cfg: SampleConfig, class_names: Sequence[str], class_images: Sequence[int]) -> list[int]:
    """Exact samples per class of an ``--around`` dataset (see the module docstring for the rule).

    Raises:
        ConfigError: a selected class with weight > 0 but no real image, nothing selected, or a positive
            ``num_samples`` that differs from ``per_image`` x the real images used.
    """
    selected = set(resolve_classes(cfg.classes, class_names))
    if cfg.class_weights in ("auto", "data"):
        weights = [float(n) for n in class_images]
    else:
        weights = resolve_class_weights(cfg.class_weights, class_names)
    weights = [w if c in selected else 0.0 for c, w in enumerate(weights)]
    empty = [class_names[c] for c, w in enumerate(weights) if w > 0 and class_images[c] == 0]
    if empty:
        raise ConfigError(
            f"class_weights={cfg.class_weights!r} gives classes {empty} samples but the real set has "
            "no image of them to vary; give them weight 0 or leave them out with --classes"
        )
    used = sum(n for c, n in enumerate(class_images) if weights[c] > 0)
    if used == 0:
        raise ConfigError(f"classes={cfg.classes!r} / class_weights={cfg.class_weights!r} select no real image")
    total = cfg.variations * used
    if cfg.num_samples and cfg.num_samples != total:
        raise ConfigError(
            f"num_samples={cfg.num_samples} but --around makes per_image={cfg.variations} x {used} real "
            f"images = {total}; drop --num-samples (or set num_samples=0), or change --per-image"
        )
    return allocate_counts(total, weights)


def variations_per_image(labels: np.ndarray, class_counts: Sequence[int], class_images: Sequence[int]) -> np.ndarray:
    """``v_i``: variations of each real image (int64 [N]); class c's ``class_counts[c]`` spread over its images.

    Raises:
        ValueError: counts for a class without images (a bug upstream).
    """
    labels = np.asarray(labels, dtype=np.int64)
    total, have = np.asarray(class_counts, dtype=np.int64), np.asarray(class_images, dtype=np.int64)
    if ((total > 0) & (have == 0)).any():
        raise ValueError("class_counts give samples to a class without real images")
    order = np.argsort(labels, kind="stable")  # [N] images grouped by class, real-set order inside
    starts = np.concatenate([[0], np.cumsum(have)])[:-1]  # [K] first position of each class in `order`
    rank = np.empty_like(labels)
    rank[order] = np.arange(len(labels)) - starts[labels[order]]  # [N] position of image i inside its class
    n = np.maximum(have[labels], 1)
    return total[labels] // n + (rank < total[labels] % n)


def inversion_chunks(variations: np.ndarray, chunk: int) -> list[np.ndarray]:
    """The real-set indices of each inversion chunk: the images with ``v_i > 0``, in order, ``chunk`` at a time."""
    used = np.flatnonzero(variations > 0).astype(np.int64)
    return [used[lo : lo + chunk] for lo in range(0, len(used), chunk)]


def load_run_encoder(cfg: SampleConfig) -> tuple[Any, dict[str, Any]]:
    """The encoder to start inversions from: ``(module or None, {"used", "path", "digest"})``.

    ``encoder=auto`` uses the run's encoder when it has one (optimisation only otherwise); ``none`` never
    does; a folder must hold one.

    Raises:
        ConfigError: ``encoder`` names a folder without a usable encoder.
    """
    none = {"used": False, "path": "", "digest": ""}
    if cfg.encoder == "none":
        return None, none
    from synthgen.invert.encoder import load_encoder

    path = cfg.checkpoint if cfg.encoder == "auto" else cfg.encoder
    loaded = load_encoder(path)
    if loaded is None:
        if cfg.encoder != "auto":
            raise ConfigError(
                f"encoder={cfg.encoder!r} holds no encoder for this checkpoint; train one with "
                "`synthgen train-encoder`, or use encoder=auto / none"
            )
        return None, none
    encoder, info = loaded
    # the sha256 of its model.pt, as `synthgen train-encoder` reports it: names the exact encoder file
    return encoder.eval(), {"used": True, "path": path, "digest": info.digest}


def around_spec(cfg: SampleConfig, real: RealSet, class_names: Sequence[str], encoder: dict[str, Any]) -> AroundSpec:
    """The plan's ``--around`` part: real set digest and sizes, exact class counts, inversion settings.

    Raises:
        ConfigError: see ``around_counts``.
    """
    have = real.class_images()
    counts = around_counts(cfg, class_names, have)
    used = bool(encoder["used"])
    inversion = {
        "steps": cfg.encoder_steps if used else cfg.inversion_steps,
        "lr": cfg.encoder_lr if used else cfg.inversion_lr,
        "restarts": 0 if used else cfg.inversion_restarts,
        "prior_weight": cfg.inversion_prior_weight,
        "encoder": encoder["digest"],
    }
    return AroundSpec(real.digest, have, tuple(counts), inversion)


def write_chunk(out: Location, index: int, plan_digest: str, ids: np.ndarray, inv: Any) -> None:
    """Write inversion chunk ``index`` atomically (ids, latents, per-image errors, the plan's digest)."""
    buf = io.BytesIO()
    np.savez(
        buf,
        ids=ids.astype(np.int64),
        latents=inv.latents.numpy().astype(np.float32),
        errors=inv.errors,
        start_errors=inv.start_errors,
        plan=np.array(plan_digest),
    )
    out.write_bytes(chunk_file(index), buf.getvalue())


def read_chunk(out: Location, index: int, plan_digest: str, ids: np.ndarray) -> dict[str, np.ndarray] | None:
    """Inversion chunk ``index`` when it exists, is readable and belongs to this plan and these ids; else None."""
    try:
        with np.load(io.BytesIO(out.read_bytes(chunk_file(index))), allow_pickle=False) as data:
            chunk = {k: data[k] for k in ("ids", "latents", "errors", "start_errors", "plan")}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if str(chunk["plan"]) != plan_digest or not np.array_equal(chunk["ids"], ids):
        return None
    return chunk


class InverterActor(LoadsOnFirstCall):
    """Loads the generator (and the encoder) once; inverts chunks of real images into OUT/inversion/."""

    def _load(self, gen_spec: dict[str, Any], plan: dict[str, Any]) -> None:
        self.plan, self.device, self.generator = actor_setup(gen_spec, plan, self.threads, self.device_name)
        enc = gen_spec.get("encoder")
        self.encoder = enc.to(self.device).eval() if enc is not None else None
        self.chunks = 0

    def invert_chunk(
        self, box: list[Any], out: Location, index: int, ids: np.ndarray, images: np.ndarray, labels: np.ndarray
    ) -> dict[str, float]:
        """Invert one chunk (real-set indices ``ids``, uint8 [n, C, H, W] images) and write its file.

        ``box`` is :func:`~synthgen.sample.actors.box_spec`'s, loaded on the first call.

        Returns:
            {"index", "rows", "mse_sum", "start_mse_sum"}.
        """
        self._ensure_loaded(box)
        if 0 <= self.fail_after <= self.chunks:
            os.kill(os.getpid(), signal.SIGKILL)  # a real kill -9, mid-run
        from synthgen.invert.inversion import invert

        s = self.plan.inversion
        images, labels = np.array(images), np.array(labels)  # writable copies of Ray's read-only buffers (torch)
        kwargs: dict[str, Any] = {}
        if self.encoder is not None:
            from synthgen.invert.encoder import encode

            kwargs["init"] = encode(self.encoder, images, labels)  # [n, dim]: the encoder's start
        # One batch per chunk: the chunk (fixed by the plan) is the canonical batch of its images.
        inv = invert(
            self.generator,
            images,
            labels,
            steps=int(s["steps"]),
            lr=float(s["lr"]),
            restarts=max(1, int(s["restarts"])),
            prior_weight=float(s["prior_weight"]),
            seed=self.plan.seed,
            batch_size=len(ids),
            image_ids=ids,
            **kwargs,
        )
        write_chunk(out, index, self.plan.digest(), ids, inv)
        self.chunks += 1
        return {
            "index": index,
            "rows": len(ids),
            "mse_sum": float(inv.errors.sum()),
            "start_mse_sum": float(inv.start_errors.sum()),
        }


def run_inversion(
    cfg: SampleConfig,
    plan: Any,
    gen_spec: dict[str, Any],
    real: RealSet,
    chunks: list[np.ndarray],
    todo: list[int],
    on_progress: Callable[[int], None] = lambda n: None,
) -> None:
    """Invert chunks ``todo`` with a pool of actors; each writes its chunk file.

    Raises:
        ConfigError: resources that cannot be scheduled.
        ShardError: a chunk failed after every actor restart (finished chunks are kept: re-run).
    """
    import ray

    from synthgen.sample.fleet import check_resources

    check_resources(cfg, ray.cluster_resources())
    out = Location(cfg.out)
    actor_cls = ray.remote(InverterActor).options(
        num_cpus=cfg.cpus_per_actor,
        num_gpus=cfg.gpus_per_actor if cfg.use_gpu else 0,
        max_restarts=cfg.max_actor_restarts,
        max_task_retries=cfg.max_actor_restarts,  # a chunk is pure: retry it
        scheduling_strategy="SPREAD" if cfg.actor_scheduling == "spread" else "DEFAULT",
    )
    device, box = ("cuda" if cfg.use_gpu else "cpu"), box_spec(gen_spec, plan.to_dict())
    fail_after = faults.from_env().sample_fail_after_batches  # test-only (synthgen.faults): actor 0's first life
    actors = [
        actor_cls.remote(cfg.threads, device, fail_after if slot == 0 else -1)
        for slot in range(min(cfg.num_actors, len(todo)))
    ]
    pending: dict[Any, int] = {}
    queue = list(todo)
    try:
        while queue or pending:
            while queue and len(pending) < 2 * len(actors):  # one running, one queued per actor
                k = queue.pop(0)
                ids = chunks[k]
                ref = actors[k % len(actors)].invert_chunk.remote(box, out, k, ids, real.images[ids], real.labels[ids])
                pending[ref] = k
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                k = pending.pop(ref)
                try:
                    on_progress(int(ray.get(ref)["rows"]))
                except ray.exceptions.RayError as exc:
                    raise ShardError(
                        f"inversion chunk {k} failed after {cfg.max_actor_restarts} actor restarts: "
                        f"{exc}; re-run the same command: finished chunks are kept"
                    ) from exc
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)


def gather_inversion(out: Location, plan: Any, real: RealSet, chunks: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every chunk file's rows in one place: latents float32 [N, dim] (zeros for unused images), errors [N].

    Raises:
        ShardError: a chunk file is missing or belongs to another plan (a bug: they were just written).
    """
    n = len(real)
    latents: np.ndarray | None = None  # [N, dim]: the width of the generator's latent space, as the chunks hold it
    errors, start = np.full(n, np.nan, dtype=np.float32), np.full(n, np.nan, dtype=np.float32)  # [N], [N]
    for k, ids in enumerate(chunks):
        chunk = read_chunk(out, k, plan.digest(), ids)
        if chunk is None:
            raise ShardError(
                f"{out.display(chunk_file(k))} is missing or unreadable after inversion; re-run the same command"
            )
        if latents is None:
            latents = np.zeros((n, chunk["latents"].shape[1]), dtype=np.float32)
        latents[ids], errors[ids], start[ids] = chunk["latents"], chunk["errors"], chunk["start_errors"]
    if latents is None:  # no chunk: nothing is varied
        latents = np.zeros((n, plan.z_dim), dtype=np.float32)
    return {"latents": latents, "errors": errors, "start_errors": start}


@dataclass(frozen=True)
class AroundRun:
    """What the generation fleet and the manifest need once every chunk is inverted."""

    actor_spec: dict[str, Any]  # {latents [N, dim], labels [N], sources [N], offsets [N + 1]}
    describe: dict[str, Any]  # the manifest's "around" entry


def prepare_around(cfg: SampleConfig, plan: Any, spec: dict[str, Any], out: Location) -> AroundRun:
    """Invert the chunks OUT does not hold yet (with a progress bar), then read every chunk back.

    Raises:
        ConfigError: unschedulable resources.
        ShardError: a chunk kept failing (finished chunks are kept: re-run).
    """
    from synthgen.ray_init import init_ray

    real: RealSet = spec["real"]
    variations = variations_per_image(real.labels, plan.class_counts, plan.around_class_images)  # [N]
    chunks = inversion_chunks(variations, plan.inversion_chunk)
    todo = [k for k, ids in enumerate(chunks) if read_chunk(out, k, plan.digest(), ids) is None]
    if todo:
        init_ray(cfg.ray_address)
        inv_spec = {k: spec[k] for k in ("model", "image_shape", "state", "encoder")}
        with image_bar(sum(len(chunks[k]) for k in todo), "invert", cfg.progress) as bar:
            run_inversion(cfg, plan, inv_spec, real, chunks, todo, on_progress=bar.update)
    inv = gather_inversion(out, plan, real, chunks)
    used = variations > 0
    describe = {
        "real": real.describe,
        "per_image": cfg.variations,
        "sigma": plan.sigma,
        "class_weights": cfg.class_weights,
        "class_images": dict(zip(plan.class_names, plan.around_class_images)),
        "images_varied": int(used.sum()),
        "inversion": {
            **plan.inversion,
            "encoder": spec["encoder_info"],
            "chunk": plan.inversion_chunk,
            "chunks": len(chunks),
        },
        "reconstruction_mse": float(inv["errors"][used].mean()),
        "start_mse": float(inv["start_errors"][used].mean()),
    }
    offsets = np.concatenate([[0], np.cumsum(variations)]).astype(np.int64)  # [N + 1]
    actor_spec = {"latents": inv["latents"], "labels": real.labels, "sources": real.sources, "offsets": offsets}
    return AroundRun(actor_spec, describe)
