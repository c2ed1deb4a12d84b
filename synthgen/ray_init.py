"""Joining or starting Ray, the same way for every stage.

No address (``ray_address: ""``, no ``RAY_ADDRESS``) starts a fresh local instance. It never falls back to the
cluster named in Ray's current-cluster file (``/tmp/ray/ray_current_cluster``, written by ``ray start``): a head that
died without ``ray stop`` leaves that file behind, and ``ray.init()`` then waits on the dead address for minutes.
``auto`` (join the cluster ``ray start`` made here) and ``host:port`` are checked with a short TCP connect first, so
a dead address fails within seconds, naming itself and the fix.

A fresh local instance starts without Ray's dashboard: it lives only as long as the command, and its processes cost
about 2 s of start-up and CPU beside the work (set ``SYNTHGEN_RAY_DASHBOARD=1`` to have it). A cluster you join keeps
whatever dashboard ``ray start`` gave it.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from synthgen.errors import SynthgenError

CONNECT_TIMEOUT_S = 5.0  # how long a joined address may take to accept a TCP connection
DASHBOARD_ENV = "SYNTHGEN_RAY_DASHBOARD"  # "1": a fresh local instance starts Ray's dashboard too


class RayAddressError(SynthgenError):
    """A Ray address that nothing answers at (a dead head, a stale current-cluster file, a typo)."""


def use_token_auth_if_present() -> None:
    """Send Ray's auth token when this machine has one.

    Ray 2.60 turns token login on for every cluster started once ``~/.ray/auth_token`` exists; a
    client without ``RAY_AUTH_MODE=token`` then fails after ~30 s with a vague "Failed to connect".
    """
    if "RAY_AUTH_MODE" not in os.environ and os.path.isfile(os.path.expanduser("~/.ray/auth_token")):
        os.environ["RAY_AUTH_MODE"] = "token"


def current_cluster_file() -> str:
    """Where ``ray start`` records this machine's cluster address (what ``address="auto"`` reads)."""
    from ray._private.utils import get_ray_address_file

    return get_ray_address_file(None)


def check_reachable(address: str) -> None:
    """Refuse, within ``CONNECT_TIMEOUT_S``, an address Ray would wait on for minutes.

    ``auto`` is resolved through the current-cluster file; ``host:port`` is tried with a TCP connect; ``ray://``
    client addresses and anything else are left to Ray.

    Raises:
        RayAddressError: ``auto`` without a current-cluster file, or an address that refuses the connection.
    """
    source = f"ray_address={address!r}"
    if address == "auto":
        path = current_cluster_file()
        if not os.path.isfile(path):
            raise RayAddressError(
                "ray_address='auto' joins the cluster `ray start` made on this machine, and there is none "
                f"({path} does not exist): start one with `ray start --head`, or leave the address empty "
                "(no --ray-address, no RAY_ADDRESS) to start a local Ray for this command"
            )
        with open(path, encoding="utf-8") as fh:
            address = fh.read().strip()
        source = f"ray_address='auto' (from {path})"
    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            return
    except OSError as exc:
        stale = "auto" in source
        raise RayAddressError(
            f"{source}: nothing answers at {address} ({exc.__class__.__name__}: {exc}). "
            + (
                "The head that wrote it died without `ray stop`: run `ray stop` (or delete "
                f"{current_cluster_file()}), then `ray start --head` again, or leave the address empty to start a "
                "local Ray for this command"
                if stale
                else "Check the head is running (`ray status --address ...`), or leave the address empty "
                "(no --ray-address, no RAY_ADDRESS) to start a local Ray for this command"
            )
        ) from exc


def address_to_join(address: str = "") -> str:
    """The address a command will join (``address``, else ``RAY_ADDRESS``), "" for a fresh local instance."""
    address = address or os.environ.get("RAY_ADDRESS") or ""
    return "" if address == "local" else address


def check_ray_address(address: str = "") -> None:
    """Before anything is written: refuse an address to join that nothing answers at (``check_reachable``).

    Raises:
        RayAddressError: naming the dead address and the fix.
    """
    import ray

    joined = address_to_join(address)
    if joined and not ray.is_initialized():
        check_reachable(joined)


def init_ray(address: str = "", **ray_kwargs: Any) -> None:
    """Join ``address`` / ``RAY_ADDRESS``, or start a fresh local Ray instance, unless Ray is already up.

    Raises:
        RayAddressError: an address to join that does not answer (see ``check_reachable``).
    """
    import ray

    if ray.is_initialized():
        return
    address = address_to_join(address)
    if address:
        check_reachable(address)
        # Only when joining a running cluster: "local" starts a fresh instance, and turning token mode
        # on after ray was imported makes that new GCS demand a token this driver never sends.
        use_token_auth_if_present()
    defaults: dict[str, Any] = {"configure_logging": False}
    if not address:
        defaults["include_dashboard"] = os.environ.get(DASHBOARD_ENV, "") == "1"
    # "" -> "local": ray.init(None) would join whatever the current-cluster file names, dead or alive
    ray.init(address=address or "local", **{**defaults, **ray_kwargs})


def state_api_served() -> bool:
    """Whether Ray's State API answers on the connected cluster, as far as this driver can tell.

    False for a local Ray this process started without its dashboard (see the module docstring): Ray still runs a
    minimal dashboard that registers an address, but nothing answers HTTP there. True for a cluster this process
    joined (a ``ray start`` head serves it unless started without a dashboard, which only that head knows) and for
    a local Ray started with the dashboard.
    """
    import ray._private.worker as ray_worker

    node = ray_worker._global_node  # the Node this driver started, or the one it joined through
    if node is None or not node.head:
        return True
    return node._ray_params.include_dashboard is not False  # None: Ray's default, the dashboard included
