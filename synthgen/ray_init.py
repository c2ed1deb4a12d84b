"""Joining or starting Ray, the same way for every stage."""

from __future__ import annotations

import os


def use_token_auth_if_present() -> None:
    """Send Ray's auth token when this machine has one.

    Ray 2.60 turns token login on for every cluster started once ``~/.ray/auth_token`` exists; a
    client without ``RAY_AUTH_MODE=token`` then fails after ~30 s with a vague "Failed to connect".
    """
    if "RAY_AUTH_MODE" not in os.environ and os.path.isfile(os.path.expanduser("~/.ray/auth_token")):
        os.environ["RAY_AUTH_MODE"] = "token"


def init_ray(address: str = "") -> None:
    """Join ``address`` / ``RAY_ADDRESS``, or start a local Ray instance, unless Ray is already up."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or ""
    if address and address != "local":
        # Only when joining a running cluster: "local" starts a fresh instance, and turning token mode
        # on after ray was imported makes that new GCS demand a token this driver never sends.
        use_token_auth_if_present()
    ray.init(address=address or None, configure_logging=False)
