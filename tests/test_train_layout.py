"""synthgen.train.layout: one worker per CPU node using its cores, one per GPU, pinned values kept, clear errors."""

from __future__ import annotations

import pytest

from synthgen.errors import ConfigError
from synthgen.train.layout import resolve_layout


def test_cpu_nodes_get_one_worker_each_using_the_smallest_node_s_cores():
    one = resolve_layout(0, 0, False, [(2.0, 0.0)])
    assert (one.num_workers, one.cpus_per_worker) == (1, 2.0)
    many = resolve_layout(0, 0, False, [(8.0, 0.0), (4.0, 0.0), (4.0, 0.0)])
    assert (many.num_workers, many.cpus_per_worker) == (3, 4.0)
    assert "one worker per node" in many.reason and "pin with train.num_workers" in many.reason


def test_gpu_nodes_get_one_worker_per_gpu_with_their_share_of_cpus():
    layout = resolve_layout(0, 0, True, [(16.0, 2.0), (16.0, 2.0), (4.0, 0.0)])
    assert (layout.num_workers, layout.cpus_per_worker) == (4, 8.0) and "one worker per GPU" in layout.reason
    with pytest.raises(ConfigError, match="use_gpu=true but no node of the cluster has a GPU"):
        resolve_layout(0, 0, True, [(8.0, 0.0)])


def test_pinned_values_are_kept_and_pinned_workers_share_a_node_s_cores():
    pinned = resolve_layout(3, 0.5, False, [(2.0, 0.0)])
    assert (pinned.num_workers, pinned.cpus_per_worker) == (3, 0.5) and "pinned" in pinned.reason
    shared = resolve_layout(2, 0, False, [(2.0, 0.0)])
    assert (shared.num_workers, shared.cpus_per_worker) == (2, 1.0)
    small = resolve_layout(4, 0, False, [(2.0, 0.0)])
    assert small.cpus_per_worker == 0.5  # four workers on two cores
    workers_only = resolve_layout(0, 1.0, False, [(4.0, 0.0), (4.0, 0.0)])
    assert (workers_only.num_workers, workers_only.cpus_per_worker) == (2, 1.0)


def test_dry_run_prints_the_layout_this_machine_gets_and_why(capsys):
    from synthgen.cli import main

    argv = ["train", "--config", "jobs/configs/fashion_mnist_smoke.yaml", "--set", "train.num_workers=0"]
    assert main([*argv, "--set", "train.cpus_per_worker=0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# layout on this machine: 1 worker(s) x" in out and "one worker per node" in out
    assert main([*argv[:-1], "train.num_workers=2", "--dry-run"]) == 0  # the smoke config pins 0.5 CPU
    assert "2 worker(s) x 0.5 CPU(s) (global batch" in capsys.readouterr().out
