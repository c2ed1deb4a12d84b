"""The sampling fleet: generator actors, PNG-encode tasks and shard-write tasks, driven by one loop.

Why an explicit actor pool and not Ray Data ``map_batches``
-----------------------------------------------------------
The unit of output, of atomic commit and of resume is the *shard* (a fixed sample_id range with a
fixed file name). Ray Data's ``write_parquet`` picks its own file names and rows per file, writes
blocks in whatever grouping the streaming executor produces, and cannot be told "skip shards 3
and 7, they exist" without re-planning the input; its knob for surviving failures
(``max_errored_blocks``) drops data silently. Our pipeline is two fixed stages over fixed-size
work items, so a small explicit pool gives us, in ~250 lines:

* exact, sharding-independent output: every batch is a sample_id range; a shard's write task gets
  its batches in id order and commits them with one atomic move (a retried shard rewrites the same
  bytes under the same name, so duplicates are impossible);
* resume for free: the driver is simply handed the list of missing shards;
* flat memory: at most ``batches_in_flight`` generated-but-unencoded batches and
  ``shards_in_flight`` encoded-but-unwritten shards exist at once, whatever N is;
* loud failures: actors restart (``max_restarts``) and their calls are retried on the replacement
  (``max_task_retries``); a shard that still fails is retried ``max_shard_retries`` times, then
  the job raises ``ShardError``. Nothing is ever dropped;
* the generator never waits on PNG encoding: encode and write run as separate Ray tasks with their
  own (fractional) CPU requests, so on a GPU node the CPUs encode while the GPU generates, and on a CPU node
  the encoders fill the cores the single-threaded actors leave. ``encode_in: actor`` encodes in the actor
  instead (measured slower here: benchmarks/README.md). The tasks run in light workers
  (``synthgen.sample.tasks`` imports no torch).

Resource defaults (0.5 CPU per actor, 0.5 per encode/write task) leave room for the tasks on a
2-CPU machine; ``check_resources`` refuses requests that would leave tasks unschedulable (the
classic hang of two 1-CPU actors on 2 CPUs) with a ConfigError instead of hanging.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synthgen import faults
from synthgen.errors import ConfigError, ShardError
from synthgen.sample.actors import SamplerActor, box_spec
from synthgen.sample.config import SampleConfig
from synthgen.sample.plan import SamplePlan, split_batches
from synthgen.sample.tasks import encode_task, write_task
from synthgen.sample.writer import streams_rows
from synthgen.shards import Shard
from synthgen.storage import Location

ACTOR_QUEUE_DEPTH = 2  # outstanding generate calls per actor: one running, one queued (no idle gaps)


@dataclass
class _ShardState:
    shard: Shard
    batches: deque  # (start, end) not yet submitted
    encoded: list = field(default_factory=list)  # encode refs in id order
    counted: int = 0  # rows already added to the progress bar
    attempts: int = 0


@dataclass(frozen=True)
class FleetStats:
    records: dict[int, dict[str, Any]]  # shard index -> manifest record
    actors_ready_s: float  # seconds until every actor had loaded the generator
    seconds: float  # wall time of the whole fleet run
    actor_restarts: int  # actors that died and came back (Ray restart)
    actors_replaced: int  # actors that exhausted their restarts and were re-created
    shard_retries: int  # shard attempts that failed and were redone


def check_resources(cfg: SampleConfig, resources: dict[str, float]) -> None:
    """Refuse resource requests that cannot run (or would hang) on this cluster.

    Raises:
        ConfigError: actors alone take every CPU (encode/write tasks would never run), or not
            enough GPUs for the GPU actors.
    """
    cpus = float(resources.get("CPU", 0))
    need = cfg.num_actors * cfg.cpus_per_actor
    if need + cfg.cpus_per_encoder > cpus + 1e-9:
        raise ConfigError(
            f"num_actors={cfg.num_actors} x cpus_per_actor={cfg.cpus_per_actor} = {need:g} CPUs plus one encoder "
            f"({cfg.cpus_per_encoder:g}) exceed the cluster's {cpus:g} CPUs, so PNG encoding could never be "
            "scheduled (the job would hang); lower num_actors or cpus_per_actor (fractions like 0.5 are fine)"
        )
    if cfg.use_gpu and cfg.num_actors * cfg.gpus_per_actor > float(resources.get("GPU", 0)) + 1e-9:
        raise ConfigError(
            f"use_gpu: {cfg.num_actors} actors x {cfg.gpus_per_actor} GPU exceed the cluster's "
            f"{resources.get('GPU', 0):g} GPUs; lower num_actors or gpus_per_actor, or drop --use-gpu"
        )


def run_fleet(
    cfg: SampleConfig,
    plan: SamplePlan,
    gen_spec: dict[str, Any],
    shards: list[Shard],
    version: str,
    on_progress: Callable[[int], None] = lambda n: None,
) -> FleetStats:
    """Generate, encode and write ``shards`` with a pool of generator actors.

    Args:
        cfg: sampling config (actors, batch size, resources, bounds, retries).
        plan: the dataset plan.
        gen_spec: {"model": ModelConfig dict, "image_shape": (C, H, W), "state": generator state_dict}.
        shards: the shards to write (missing ones on a resume).
        version: synthgen version recorded in the shards.
        on_progress: called with a row delta as batches get encoded (negative when a shard is redone).

    Returns:
        FleetStats with one manifest record per written shard.

    Raises:
        ConfigError: resources that cannot be scheduled.
        ShardError: a shard failed more than ``max_shard_retries`` extra times.
    """
    import ray

    check_resources(cfg, ray.cluster_resources())
    t0 = time.perf_counter()
    out, plan_dict = Location(cfg.out), plan.to_dict()
    box = box_spec(gen_spec, plan_dict)  # one copy in the object store, shared by every actor (and its restarts)
    fail_after = faults.from_env().sample_fail_after_batches  # test-only (synthgen.faults)
    actor_cls = ray.remote(SamplerActor).options(
        num_cpus=cfg.cpus_per_actor,
        num_gpus=cfg.gpus_per_actor if cfg.use_gpu else 0,
        max_restarts=cfg.max_actor_restarts,
        max_task_retries=cfg.max_actor_restarts,  # generate() is pure: safe to retry on the new actor
        # SPREAD puts the actors on as many nodes as possible (CPU sampling on a multi-node cluster);
        # DEFAULT fills the driver's node until it is half busy, then goes elsewhere.
        scheduling_strategy="SPREAD" if cfg.actor_scheduling == "spread" else "DEFAULT",
    )
    device = "cuda" if cfg.use_gpu else "cpu"

    def new_actor(slot: int, inject: bool = False) -> Any:
        fail = fail_after if inject else -1  # test-only fault (synthgen.faults): first actor of slot 0 only
        return actor_cls.remote(cfg.threads, device, fail)

    # encode tasks also write the batch's PNG files when the format has them: I/O, so retried on OSError too
    encode = ray.remote(encode_task).options(num_cpus=cfg.cpus_per_encoder, max_retries=3, retry_exceptions=[OSError])
    write = ray.remote(write_task).options(num_cpus=cfg.cpus_per_encoder, max_retries=3, retry_exceptions=[OSError])

    actors = [new_actor(slot, inject=slot == 0) for slot in range(cfg.num_actors)]
    dispatcher = _Dispatcher(cfg, plan, box, actors, new_actor, encode, write, out, version, on_progress)
    try:
        ray.get([a.info.remote(box) for a in actors])  # wait until every actor has loaded the generator
        ready_s = time.perf_counter() - t0
        records = dispatcher.run(shards)
        restarts = _count_restarts(actors)
    finally:
        for actor in actors:  # free the CPUs/GPUs now, also when a shard failed for good
            ray.kill(actor, no_restart=True)
    seconds = time.perf_counter() - t0
    return FleetStats(records, ready_s, seconds, restarts, dispatcher.replaced, dispatcher.retries)


class _Dispatcher:
    """Driver-side bookkeeping of one fleet run: which batches and shards are in flight where.

    Per batch: ``actor.generate`` -> ``encode`` task (chained by ref, no driver round trip), which also writes
    the batch's PNG files when the format has them (``encode_in: actor``: one ``actor.generate_encoded`` call
    doing both); per shard: one ``write`` task over its encode refs, submitted with the shard's last batch (Ray
    starts it once every batch is encoded), which writes the Parquet file and commits. The driver only counts and
    bounds what is in flight.
    """

    def __init__(
        self,
        cfg: SampleConfig,
        plan: SamplePlan,
        box: list[Any],
        actors: list[Any],
        new_actor: Callable[[int], Any],
        encode: Any,
        write: Any,
        out: Location,
        version: str,
        on_progress: Callable[[int], None],
    ) -> None:
        import ray

        self.cfg, self.plan, self.box, self.actors, self.new_actor = cfg, plan, box, actors, new_actor
        self.encode, self.write, self.out, self.version, self.on_progress = encode, write, out, version, on_progress
        self.plan_dict = plan.to_dict()
        # per-row files (the PNG tree) are written by each batch's encode task, so a shard's end only commits
        # them: the last shard's files are not all written after the last batch is generated. The plan object goes
        # into the object store once (a top-level ref argument: Ray hands every task the value, no per-batch parse)
        self.stream = (out, ray.put(plan)) if streams_rows(plan) else ()
        self.active: dict[int, _ShardState] = {}  # shard index -> state of its current attempt
        self.gen_refs: dict[Any, int] = {}  # generate ref -> actor slot
        self.enc_refs: dict[Any, tuple[int, int, int]] = {}  # encode ref -> (shard index, attempt, rows)
        self.write_refs: dict[Any, int] = {}  # write ref -> shard index
        self.load = [0] * len(actors)  # outstanding generate calls per actor slot
        self.records: dict[int, dict[str, Any]] = {}
        self.retries = self.replaced = 0

    def run(self, shards: list[Shard]) -> dict[int, dict[str, Any]]:
        import ray

        todo = deque(shards)
        while todo or self.active:
            while todo and len(self.active) < self.cfg.shards_in_flight:
                self._start(todo.popleft())
            self._submit()
            pending = list(dict.fromkeys([*self.gen_refs, *self.enc_refs, *self.write_refs]))  # one ref may be in two
            ray.wait(pending, num_returns=1, fetch_local=False)  # block until something finished ...
            done, _ = ray.wait(pending, num_returns=len(pending), timeout=0, fetch_local=False)  # ... take all
            for ref in done:
                self._finished(ref)
        return self.records

    def _start(self, shard: Shard, attempts: int = 0) -> None:
        batches = deque(split_batches(shard, self.cfg.batch_size))
        self.active[shard.index] = _ShardState(shard, batches, attempts=attempts)

    def _submit(self) -> None:
        """Submit batches, oldest shard first, while the in-flight bounds allow."""
        for state in sorted(self.active.values(), key=lambda s: s.shard.index):
            while (
                state.batches and len(self.enc_refs) < self.cfg.batches_in_flight and min(self.load) < ACTOR_QUEUE_DEPTH
            ):
                slot = self.load.index(min(self.load))
                start, end = state.batches.popleft()
                gen_ref, enc_ref = self._generate(slot, start, end)
                self.gen_refs[gen_ref] = slot
                self.load[slot] += 1
                self.enc_refs[enc_ref] = (state.shard.index, state.attempts, end - start)
                state.encoded.append(enc_ref)
                if not state.batches:
                    ref = self.write.remote(self.out, self.plan_dict, state.shard.index, self.version, *state.encoded)
                    self.write_refs[ref] = state.shard.index
                    state.encoded = []  # the write task now holds the encoded batches

    def _generate(self, slot: int, start: int, end: int) -> tuple[Any, Any]:
        """Submit ids [start, end) to actor ``slot``; returns (generate ref, encoded-batch ref): one ref when the
        actor encodes its own batch (``encode_in``), else a generate call chained by ref into an encode task."""
        level, actor = self.plan.png_compress_level, self.actors[slot]
        if self.cfg.encode_in == "actor":
            ref = actor.generate_encoded.options(retry_exceptions=[OSError]).remote(
                self.box, start, end, level, *self.stream
            )
            return ref, ref
        gen_ref = actor.generate.remote(self.box, start, end)
        return gen_ref, self.encode.remote(gen_ref, level, *self.stream)

    def _finished(self, ref: Any) -> None:
        if ref in self.gen_refs:  # (with encode_in actor the same ref is also the batch's encoded ref)
            self.load[self.gen_refs.pop(ref)] -= 1  # errors surface through the shard's write task
        if ref in self.enc_refs:
            index, attempt, rows = self.enc_refs.pop(ref)
            state = self.active.get(index)
            if state is not None and state.attempts == attempt:  # ignore batches of a failed attempt
                state.counted += rows
                self.on_progress(rows)
        if ref in self.write_refs:
            self._shard_written(ref, self.write_refs.pop(ref))

    def _shard_written(self, ref: Any, index: int) -> None:
        """Record a finished shard, or retry it (replacing dead actors) until max_shard_retries."""
        import ray

        state = self.active.pop(index)
        try:
            self.records[index] = ray.get(ref)
            return
        except ray.exceptions.RayError as exc:
            state.attempts += 1
            self.retries += 1
            if state.attempts > self.cfg.max_shard_retries:
                raise ShardError(
                    f"{state.shard.name} (sample_ids [{state.shard.start}, {state.shard.end})) failed "
                    f"{state.attempts} times; last error: {exc}. Fix the cause and re-run the same "
                    "command: finished shards are kept"
                ) from exc
        self.on_progress(-state.counted)
        self.replaced += _replace_dead_actors(self.actors, self.new_actor)
        self._start(state.shard, state.attempts)


def _replace_dead_actors(actors: list[Any], new_actor: Callable[[int], Any]) -> int:
    """Re-create actors that no longer answer (restarts exhausted); return how many."""
    import ray

    count = 0
    for slot, actor in enumerate(actors):
        try:
            ray.get(actor.info.remote(), timeout=120)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            ray.kill(actor, no_restart=True)
            actors[slot] = new_actor(slot)  # load[slot] drains as the dead actor's calls fail
            count += 1
    return count


def _count_restarts(actors: list[Any]) -> int:
    """Actors now running as a restarted incarnation (killed and brought back by Ray)."""
    import ray

    return sum(1 for info in ray.get([a.info.remote() for a in actors]) if info["restarted"])
