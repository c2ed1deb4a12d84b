"""Test helper: real `ray start` clusters on this machine (a head, optionally more nodes), torn down for sure.

    with LocalRayCluster(num_cpus=4) as cluster:          # `ray start --head --block ...`
        cluster.add_node(num_cpus=2)                       # `ray start --address=<head> --block ...`
        cluster.wait_for_nodes(2)
        cluster.ray("job", "list")                        # the Ray CLI with this cluster's address and auth
        cluster.gcs_address, cluster.dashboard_url         # for `run.ray_address` / `ray job submit --address`

Every node is its own `ray start --block` process in a new session (``start_new_session``), with
every port chosen free (other engineers' Ray instances run on this machine too) and its own short
``--temp-dir`` (unix socket paths are limited to ~107 characters, and a private temp dir keeps
`ray.init()` elsewhere from finding this cluster through ``/tmp/ray/ray_current_cluster``).
``stop()`` sends SIGTERM to each node's process group, then SIGKILLs whatever is left of its
*session*: Ray's worker processes get process groups of their own but stay in the session. Never
``ray stop``: it would kill every Ray instance on the machine.

Auth: Ray 2.60 turns token authentication on for a cluster started while ``~/.ray/auth_token``
exists, and then its clients must run with ``RAY_AUTH_MODE=token``. The helper does what the README
tells users to do: make sure a token exists (``ray get-auth-token --generate``) and run every node
and CLI call with ``RAY_AUTH_MODE=token`` (``env``); ``env_without_auth()`` is for checking the
failure a user without it sees.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

RAY = os.path.join(os.path.dirname(sys.executable), "ray")  # the Ray CLI of this interpreter
READY_LINE = "Ray runtime started"  # what `ray start` prints once its node is up


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_with_auth() -> dict[str, str]:
    """This process's environment plus token auth, with a token created if none exists yet."""
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    subprocess.run([ray_cli(), "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=60)
    return env


def env_without_auth() -> dict[str, str]:
    """This process's environment without any Ray auth settings (a user who did not follow the README)."""
    return {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}


def ray_cli() -> str:
    """Path of the `ray` CLI (beside this interpreter, else on PATH)."""
    return RAY if os.path.isfile(RAY) else (shutil.which("ray") or "ray")


@dataclass
class _Node:
    proc: subprocess.Popen  # the `ray start --block` process; its pid is the session id
    log_path: str  # its stdout + stderr
    temp_dir: str  # its --temp-dir


def _session_pids(sid: int) -> list[int]:
    """PIDs of every live process in session ``sid`` (read from /proc; Linux only)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session ...
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


class LocalRayCluster:
    """A head node (and optional extra nodes) started with `ray start`; a context manager.

    Args:
        num_cpus: logical CPUs of the head node.
        resources: custom resources of the head node.
        start_timeout: seconds to wait for a node to come up (slow on a busy 2-core machine).
    """

    def __init__(
        self, num_cpus: int = 4, resources: dict[str, float] | None = None, start_timeout: float = 180
    ) -> None:
        self.env = env_with_auth()
        self.start_timeout = start_timeout
        self.root = tempfile.mkdtemp(prefix="rsg-", dir="/tmp")  # short: socket paths live below it
        self.nodes: list[_Node] = []
        self.port = free_port()
        self.dashboard_port = free_port()
        self.gcs_address = f"127.0.0.1:{self.port}"  # replaced by the head's own record once it is up
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"
        try:
            self._start(
                [
                    "--head",
                    f"--port={self.port}",
                    "--include-dashboard=true",
                    f"--dashboard-port={self.dashboard_port}",
                    "--dashboard-host=127.0.0.1",
                    f"--ray-client-server-port={free_port()}",
                ],
                num_cpus,
                resources,
            )
            # The address the head registered itself under (its node IP, not 127.0.0.1): what the
            # README's `ray start --address=...` line shows and what the other nodes must use.
            with open(os.path.join(self.nodes[0].temp_dir, "ray_current_cluster"), encoding="utf-8") as fh:
                self.gcs_address = fh.read().strip()
        except BaseException:
            self.stop()
            raise

    def add_node(self, num_cpus: int, resources: dict[str, float] | None = None) -> None:
        """Start one more node joining the head (`ray start --address=<head>`)."""
        self._start([f"--address={self.gcs_address}"], num_cpus, resources)

    def _start(self, args: list[str], num_cpus: int, resources: dict[str, float] | None) -> None:
        index = len(self.nodes)
        temp_dir = os.path.join(self.root, f"n{index}")
        log_path = os.path.join(self.root, f"node{index}.log")
        ports = [
            f"--node-manager-port={free_port()}",
            f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
        ]
        cmd = [
            ray_cli(),
            "start",
            "--block",
            *args,
            *ports,
            f"--num-cpus={num_cpus}",
            "--num-gpus=0",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
            "--object-store-memory=500000000",
        ]  # 500 MB: the tests move little data; /dev/shm is shared
        if resources:
            cmd.append(f"--resources={json.dumps(resources)}")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        node = _Node(proc, log_path, temp_dir)
        self.nodes.append(node)
        deadline = time.monotonic() + self.start_timeout
        while READY_LINE not in self.log(index):
            if proc.poll() is not None:
                raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{self.log(index)[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {index} not up after {self.start_timeout:.0f}s:\n{self.log(index)[-3000:]}")
            time.sleep(0.5)

    def log(self, index: int = 0) -> str:
        """Output of node ``index``'s `ray start` so far."""
        with open(self.nodes[index].log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def ray(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Run ``ray <args> --address <dashboard>`` (CLI groups job/list/...) with this cluster's auth.

        Raises:
            AssertionError: ``check`` and a non-zero exit (the output is in the message).
        """
        proc = subprocess.run(
            [ray_cli(), *args, "--address", self.dashboard_url],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert proc.returncode == 0, f"ray {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        return proc

    def list_state(self, kind: str, *filters: str) -> list[dict[str, Any]]:
        """``ray list <kind> --detail --format json`` (e.g. "nodes", "actors"), with ``--filter`` terms."""
        args = ["list", kind, "--detail", "--format", "json", "--limit", "10000"]
        for term in filters:
            args += ["--filter", term]
        return json.loads(self.ray(*args).stdout)

    def wait_for_nodes(self, count: int, timeout: float = 120) -> list[dict[str, Any]]:
        """Wait until ``count`` nodes are ALIVE; return them."""
        deadline = time.monotonic() + timeout
        while True:
            alive = self.list_state("nodes", "state=ALIVE")
            if len(alive) >= count or time.monotonic() > deadline:
                assert len(alive) >= count, f"{len(alive)} of {count} nodes alive after {timeout:.0f}s"
                return alive
            time.sleep(1)

    def stop(self) -> None:
        """Stop every node: SIGTERM its process group, then SIGKILL what is left of its session."""
        for node in reversed(self.nodes):  # extra nodes first, the head last
            sid = node.proc.pid
            try:
                os.killpg(sid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                node.proc.wait(timeout=8)  # a graceful stop, if it comes quickly
            except subprocess.TimeoutExpired:
                pass
            for _ in range(20):
                left = _session_pids(sid)
                if not left:
                    break
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.25)
            if node.proc.poll() is None:
                node.proc.wait(timeout=10)
        self.nodes.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
