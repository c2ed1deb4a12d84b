"""synthgen.ray_init: no address starts a local Ray (never a stale current-cluster file's), and an address to join
that nothing answers at fails at once, naming itself and the fix."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

from synthgen import ray_init
from synthgen.ray_init import RayAddressError, check_reachable
from synthgen.train.untrained import write_random_checkpoint


def dead_address() -> str:
    """A localhost port nothing listens on (bound once to pick it, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"


def test_auto_without_a_cluster_file_names_ray_start(tmp_path, monkeypatch):
    monkeypatch.setattr(ray_init, "current_cluster_file", lambda: str(tmp_path / "ray_current_cluster"))
    with pytest.raises(RayAddressError, match=r"there is none .*ray start --head.*leave the address empty"):
        check_reachable("auto")


def test_a_stale_cluster_file_fails_at_once_naming_the_dead_address_and_ray_stop(tmp_path, monkeypatch):
    stale, address = tmp_path / "ray_current_cluster", dead_address()
    stale.write_text(address)
    monkeypatch.setattr(ray_init, "current_cluster_file", lambda: str(stale))
    with pytest.raises(RayAddressError, match=rf"from {stale}\): nothing answers at {address}.*run `ray stop`"):
        check_reachable("auto")
    with pytest.raises(RayAddressError, match=rf"ray_address='{address}': nothing answers.*ray status"):
        check_reachable(address)


def test_a_listening_address_and_client_addresses_pass():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")
    check_reachable("ray://head:10001")  # left to Ray's client


@pytest.fixture
def stale_cluster_file():
    """A Ray temp dir (``RAY_TMPDIR``, short: Ray's socket paths must fit) whose current-cluster file names a dead
    head, as `ray start` leaves it when the head dies. Only the subprocesses given ``RAY_TMPDIR`` see it, so no other
    Ray on this machine reads the dead address. Yields (the file, the environment for the subprocesses)."""
    root = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    path = os.path.join(root, "ray", "ray_current_cluster")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as fh:
        fh.write(dead_address())
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "TMPDIR")}
    yield path, {**env, "RAY_TMPDIR": root}
    shutil.rmtree(root, ignore_errors=True)


def test_the_cli_without_an_address_starts_its_own_ray_beside_a_stale_cluster_file(stale_cluster_file, tmp_path):
    stale_file, env = stale_cluster_file
    checkpoint = write_random_checkpoint(str(tmp_path / "run"))
    argv = [sys.executable, "-m", "synthgen.cli", "sample", "--checkpoint", checkpoint, "--num-samples", "20"]
    done = subprocess.run(
        [*argv, "--out", str(tmp_path / "out"), "--no-progress"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sampled 20 images" in done.stdout
    joined = subprocess.run(
        [*argv, "--out", str(tmp_path / "out2"), "--ray-address", "auto", "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert joined.returncode == 1 and "run `ray stop`" in joined.stderr and stale_file in joined.stderr
    assert not (tmp_path / "out2").exists()


def test_training_with_a_dead_address_fails_before_its_run_folder_exists(tmp_path):
    address = dead_address()
    argv = ["train", "--config", "jobs/configs/fashion_mnist_smoke.yaml", "--set", f"run.storage_path={tmp_path}"]
    script = (
        f"import sys; from synthgen.cli import main; sys.exit(main({[*argv, '--set', f'run.ray_address={address}']!r}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and f"nothing answers at {address}" in done.stderr, done.stderr[-2000:]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "env, address, dashboard",
    [({}, "", False), ({"SYNTHGEN_RAY_DASHBOARD": "1"}, "", True), ({}, "local", False), ({}, "10.0.0.1:6379", None)],
)
def test_a_fresh_local_instance_starts_without_the_dashboard_unless_asked(monkeypatch, env, address, dashboard):
    import ray

    calls: list[dict] = []
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv(ray_init.DASHBOARD_ENV, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_init, "check_reachable", lambda address: None)  # no cluster to reach in this test
    monkeypatch.setattr(ray_init, "use_token_auth_if_present", lambda: None)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    ray_init.init_ray(address, num_cpus=2)
    assert len(calls) == 1 and calls[0]["num_cpus"] == 2 and calls[0]["configure_logging"] is False
    # a joined cluster keeps the dashboard `ray start` gave it: the driver asks nothing of it
    assert calls[0].get("include_dashboard") is dashboard
    assert calls[0]["address"] == (address if dashboard is None else "local")
