"""The worker layout of a training run, chosen for the hardware unless the config pins it.

On CPU nodes one worker per node using all its cores (intra-op threads) beats several gloo workers on one node:
DDP between processes on the same cores only adds all-reduce work. On GPU nodes the rule is one worker per GPU.
``train.num_workers: 0`` / ``train.cpus_per_worker: 0`` (the defaults) mean "auto"; a value > 0 pins it.

The global batch is ``train.batch_size x num_workers``: an automatic layout that adds nodes also grows the batch.
Pin ``train.num_workers`` to keep a recipe's global batch on any cluster.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from synthgen.errors import ConfigError


@dataclass(frozen=True)
class Layout:
    num_workers: int  # Ray Train workers
    cpus_per_worker: float  # CPUs each reserves (its torch threads, unless train.num_threads pins them)
    reason: str  # why, in words (--dry-run and the log print it)


def resolve_layout(
    num_workers: int, cpus_per_worker: float, use_gpu: bool, nodes: Sequence[tuple[float, float]]
) -> Layout:
    """The layout for ``train``'s pinned values (0 = auto) on ``nodes``.

    Args:
        num_workers: train.num_workers (0 = auto).
        cpus_per_worker: train.cpus_per_worker (0 = auto).
        use_gpu: train.use_gpu.
        nodes: (CPUs, GPUs) of every alive node.

    Raises:
        ConfigError: use_gpu without a GPU, or no node with a CPU.
    """
    if num_workers > 0 and cpus_per_worker > 0:
        return Layout(num_workers, cpus_per_worker, "pinned by train.num_workers and train.cpus_per_worker")
    pin = "; pin with train.num_workers / train.cpus_per_worker"
    if use_gpu:
        gpu_nodes = [(c, int(g)) for c, g in nodes if g >= 1]
        if not gpu_nodes:
            raise ConfigError(
                "train.use_gpu=true but no node of the cluster has a GPU: set train.use_gpu=false, or join a cluster "
                "with GPUs (--ray-address)"
            )
        gpus = sum(g for _, g in gpu_nodes)
        workers = num_workers or gpus
        cpus = cpus_per_worker or max(1.0, float(min(math.floor(c / g) for c, g in gpu_nodes)))
        why = f"auto: {len(gpu_nodes)} GPU node(s), {gpus} GPU(s) -> one worker per GPU with {cpus:g} CPU(s) each"
        return Layout(workers, cpus, why + pin)
    cpu_nodes = [c for c, _ in nodes if c >= 1]
    if not cpu_nodes:
        raise ConfigError("no node of the cluster has a CPU to train on; check `ray status`")
    if num_workers == 0:
        cpus = cpus_per_worker or float(math.floor(min(cpu_nodes)))
        why = (
            f"auto: {len(cpu_nodes)} CPU node(s) ({', '.join(f'{c:g}' for c in cpu_nodes)} CPUs) -> one worker per "
            f"node using {cpus:g} core(s) as torch threads (faster than several workers on one node's cores)"
        )
        return Layout(len(cpu_nodes), cpus, why + pin)
    per_node = math.ceil(num_workers / len(cpu_nodes))  # pinned workers, spread as evenly as the nodes allow
    cpus = min(cpu_nodes) / per_node
    cpus = float(math.floor(cpus)) if cpus >= 1 else round(cpus, 2)
    why = f"train.num_workers={num_workers} pinned on {len(cpu_nodes)} CPU node(s) -> {cpus:g} CPU(s) per worker"
    return Layout(num_workers, cpus, why + "; pin train.cpus_per_worker too")


def cluster_nodes() -> list[tuple[float, float]]:
    """(CPUs, GPUs) of every alive node of the Ray cluster this process is connected to."""
    import ray

    return [
        (float(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0))) for n in ray.nodes() if n["Alive"]
    ]


def this_machine() -> list[tuple[float, float]]:
    """(CPUs, GPUs) of this machine alone: what ``--dry-run`` lays out without starting Ray."""
    import torch

    return [(float(os.cpu_count() or 1), float(torch.cuda.device_count() if torch.cuda.is_available() else 0))]
