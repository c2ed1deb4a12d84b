"""What runs inside the sampling fleet's generator actors (the encode/write tasks: ``synthgen.sample.tasks``).

``synthgen.sample.fleet`` (the driver side) schedules these; keeping them apart keeps each file to one
side of the Ray boundary. Every function here is pure in its inputs (a sample_id range, a shard index),
so a retried call on a replacement actor produces the same bytes.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import numpy as np

from synthgen.draws import labels_for, locate
from synthgen.models.latent import latent_space
from synthgen.pixels import to_uint8
from synthgen.sample.plan import SamplePlan
from synthgen.sample.prior import prior_images
from synthgen.sample.tasks import encode_task
from synthgen.storage import Location


def reconstructed() -> bool:
    """True inside an actor that Ray restarted after a crash."""
    import warnings

    import ray

    with warnings.catch_warnings():  # the property touches a deprecated attribute inside Ray
        warnings.simplefilter("ignore", DeprecationWarning)
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)


def build_generator(gen_spec: dict[str, Any], num_classes: int, device: Any) -> Any:
    """The generator of ``gen_spec`` ({"model", "image_shape", "state"}; a translator's also "input_shape") on
    ``device``, in eval mode."""
    from synthgen.config import ModelConfig, from_dict
    from synthgen.models import build_models, build_translation_models

    model, shape = from_dict(ModelConfig, gen_spec["model"]), tuple(gen_spec["image_shape"])
    if "input_shape" in gen_spec:  # an image -> image model (--translate)
        g, _ = build_translation_models(model, tuple(gen_spec["input_shape"]), shape, num_classes)
    else:
        g, _ = build_models(model, shape, num_classes)
    g.load_state_dict(gen_spec["state"])
    return g.to(device).eval()


def actor_setup(gen_spec: dict[str, Any], plan: dict[str, Any], threads: int, device: str) -> tuple[Any, ...]:
    """What every fleet actor loads once: ``(SamplePlan, torch.device, generator in eval mode)``."""
    import torch

    from synthgen.allocator import keep_freed_memory

    keep_freed_memory()  # each batch's buffers reused, not faulted in again (synthgen.allocator)
    torch.set_num_threads(threads)  # same thread count in every actor: part of CPU determinism
    sample_plan = SamplePlan.from_dict(plan)
    torch_device = torch.device(device)
    return sample_plan, torch_device, build_generator(gen_spec, len(sample_plan.class_names), torch_device)


def box_spec(gen_spec: dict[str, Any], plan: dict[str, Any]) -> list[Any]:
    """Put what a fleet's actors load into the object store once; returns the box ``[ref]`` their calls carry.

    Ray logs an error for a restartable actor whose constructor arguments live in the object store (a
    restart fails once they are gone, ray#53727). So the actors' constructors take only small values, and
    each call carries this box (a nested ref: Ray does not resolve it per call); an actor, or its restart,
    loads it on its first call. The driver keeps the box alive for the whole run, so a restart can never
    lose it.
    """
    import ray

    return [ray.put({"gen_spec": gen_spec, "plan": plan})]


class LoadsOnFirstCall:
    """Base of the fleet's actors: ``_ensure_loaded(box)`` runs ``_load(gen_spec, plan)`` once per life."""

    def __init__(self, threads: int, device: str, fail_after: int = -1) -> None:
        self.threads, self.device_name, self.loaded = threads, device, False
        # Fault injection for the kill tests (synthgen.faults): only the first life dies, its replacement works.
        self.fail_after = -1 if reconstructed() else fail_after

    def _ensure_loaded(self, box: list[Any] | None) -> None:
        if not self.loaded and box is not None:
            import ray

            spec = ray.get(box[0])
            self._load(spec["gen_spec"], spec["plan"])
            self.loaded = True

    def _load(self, gen_spec: dict[str, Any], plan: dict[str, Any]) -> None:
        raise NotImplementedError

    def info(self, box: list[Any] | None = None) -> dict[str, Any]:
        """Load (given the box), then report the PID and whether this is a restarted incarnation."""
        self._ensure_loaded(box)
        return {"pid": os.getpid(), "restarted": reconstructed()}


class SamplerActor(LoadsOnFirstCall):
    """Loads the generator once; turns sample_id ranges into (ids, labels, uint8 images)."""

    def _load(self, gen_spec: dict[str, Any], plan: dict[str, Any]) -> None:
        import torch

        self.plan, self.device, self.generator = actor_setup(gen_spec, plan, self.threads, self.device_name)
        self.translate = gen_spec.get("translate")  # --translate: {inputs [N, C_in, H, W], labels [N], sources [N]}
        self.batches = 0
        if self.translate is not None:
            return
        self.upscaler = None  # --upscale: the srgan generator every span's images go through
        if gen_spec.get("upscale") is not None:
            self.upscaler = build_generator(gen_spec["upscale"], len(self.plan.class_names), self.device)
        self.space = latent_space(self.generator)  # where truncation and --around variations happen
        self.around = gen_spec.get(
            "around"
        )  # --around: {latents [N_r, z], labels [N_r], sources [N_r], offsets [N_r + 1]}
        if self.around is not None:
            self.around = {
                **self.around,
                "latents": torch.from_numpy(np.array(self.around["latents"])),
            }  # writable copy
        self.judge = None  # the filtering judge's classifier, when the plan filters
        self.threshold = 0.0  # its minimum probability of the requested label
        if self.plan.filter:
            from synthgen.sample.filter import build_judge_model

            self.judge = build_judge_model(gen_spec["judge"], self.device)
            self.threshold = self.plan.filter.threshold

    def generate(self, box: list[Any], start: int, end: int) -> tuple[np.ndarray, ...]:
        """Images of sample_ids [start, end) (``box``: :func:`box_spec`'s, loaded on the first call).

        Returns:
            ids int64 [n], labels int64 [n], images uint8 [n, C, H, W], candidates int64 [n] (latents
            drawn per image: 1 without a filter), below bool [n] (kept although the judge filter
            rejected every candidate: the best one was kept), provenance (--around: source_ids int64 [n]
            and source strings [n]; else None).
        """
        self._ensure_loaded(box)
        if 0 <= self.fail_after <= self.batches:
            os.kill(os.getpid(), signal.SIGKILL)  # a real kill -9, mid-run
        import torch

        p = self.plan
        ids = np.arange(start, end, dtype=np.int64)  # [n]
        if self.translate is not None:
            return self._generate_translated(ids)
        if self.around is not None:
            return self._generate_around(ids)
        labels = labels_for(ids, p.class_counts, p.seed)  # [n]
        pieces, drawn, below = [], [], []
        with torch.inference_mode():
            for s, e in self._spans(start, end):
                span_ids = np.arange(s, e, dtype=np.int64)  # [k] (may run past N: those rows are dropped)
                valid = span_ids < p.num_samples
                span_labels = np.zeros(len(span_ids), dtype=np.int64)
                span_labels[valid] = labels_for(span_ids[valid], p.class_counts, p.seed)
                lo, hi = max(start, s) - s, min(end, e) - s
                if self.judge is not None:
                    images, candidates, prob = self._filtered(span_ids, span_labels)  # [k, C, H, W], [k], [k]
                    drawn.append(candidates[lo:hi])
                    below.append(prob[lo:hi] < self.threshold)
                else:
                    y = torch.from_numpy(span_labels).to(self.device)  # [k]
                    images = to_uint8(prior_images(self.generator, span_ids, y, p.seed, **self._draw_options()))
                    drawn.append(np.ones(hi - lo, dtype=np.int64))
                    below.append(np.zeros(hi - lo, dtype=bool))
                pieces.append(self._upscaled(images)[lo:hi].cpu().numpy())
        self.batches += 1
        return ids, labels, np.concatenate(pieces), np.concatenate(drawn), np.concatenate(below), None

    def generate_encoded(
        self,
        box: list[Any],
        start: int,
        end: int,
        level: int,
        out: Location | None = None,
        plan: SamplePlan | None = None,
    ) -> tuple[Any, ...]:
        """``generate`` then :func:`encode_task` in this process (``encode_in: actor``): the batch is encoded, and its
        PNG-tree files written, by the process that made it, with no hand-off to a task."""
        return encode_task(self.generate(box, start, end), level, out, plan)

    def _upscaled(self, images: Any) -> Any:
        """--upscale: a span's uint8 images [k, C, h, w] through the upscaler -> uint8 [k, C, f*h, f*w] (the same
        call as ``--upscale-from`` makes on a sampled dataset's rows); the images themselves without one."""
        if self.upscaler is None:
            return images
        from synthgen.pixels import to_float

        return to_uint8(self.upscaler.translate(to_float(images).to(self.device)))

    def _spans(self, start: int, end: int) -> list[tuple[int, int]]:
        """Forward spans [s, e). On the CPU, canonical chunks aligned to sample ids: the forward always sees the
        same batch of ids, so kernel choices that depend on batch size cannot change a byte."""
        if self.device.type != "cpu":
            return [(start, end)]  # one forward per batch; equal to CPU up to float tolerance
        first = start // self.plan.chunk_size * self.plan.chunk_size
        return [(s, s + self.plan.chunk_size) for s in range(first, end, self.plan.chunk_size)]

    def _generate_around(self, ids: np.ndarray) -> tuple[Any, ...]:
        """--around: sample id -> (real image i, variation j) -> G(z_i + sigma * scale * eps(seed, i, j), y_i)."""
        import torch

        from synthgen.invert.inversion import around_images

        p, a = self.plan, self.around
        start, end = int(ids[0]), int(ids[-1]) + 1
        pieces = []
        with torch.inference_mode():
            for s, e in self._spans(start, end):
                span_ids = np.minimum(np.arange(s, e, dtype=np.int64), p.num_samples - 1)  # padding rows: dropped
                rows, var = locate(a["offsets"], span_ids)  # [k], [k]
                images = around_images(
                    self.space, a["latents"], rows, rows, var, a["labels"][rows], p.sigma, p.seed, self.device
                )  # [k, C, H, W] uint8
                lo, hi = max(start, s) - s, min(end, e) - s
                pieces.append(self._upscaled(images)[lo:hi].cpu().numpy())
        rows, _ = locate(a["offsets"], ids)  # [n] source_id of every row
        self.batches += 1
        ones, zeros = np.ones(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
        return ids, a["labels"][rows], np.concatenate(pieces), ones, zeros, (rows, [a["sources"][r] for r in rows])

    def _generate_translated(self, ids: np.ndarray) -> tuple[Any, ...]:
        """--translate: sample id i * K + j -> variation j of input image i (``synthgen.translation``)."""
        from synthgen.translation import translate_rows

        p, t = self.plan, self.translate
        start, end = int(ids[0]), int(ids[-1]) + 1
        images = translate_rows(
            self.generator,
            t["inputs"],
            t["labels"],
            start,
            end,
            per_image=p.per_image,
            seed=p.seed,
            variation=p.variation,
            chunk_size=p.chunk_size,
            device=self.device,
        )  # [n, C, H, W] uint8
        rows = ids // p.per_image  # [n] source_id of every row
        self.batches += 1
        ones, zeros = np.ones(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
        return ids, t["labels"][rows], images, ones, zeros, (rows, [t["sources"][r] for r in rows])

    def _filtered(self, span_ids: np.ndarray, span_labels: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
        from synthgen.sample.filter import generate_filtered

        p = self.plan
        return generate_filtered(
            self.generator,
            self.judge,
            span_ids,
            span_labels,
            seed=p.seed,
            threshold=self.threshold,
            max_candidates=p.filter_max_candidates,
            **self._draw_options(),
        )

    def _draw_options(self) -> dict[str, Any]:
        """How every prior draw of this plan is made: the keyword arguments of ``prior_images``."""
        p = self.plan
        return {"truncation": p.truncation, "fixed_codes": p.codes, "space": self.space, "device": self.device}
