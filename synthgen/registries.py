"""The one shape of synthgen's name registries (data sources, models, losses): a plain dict, filled by
decorators when the modules are imported, and looked up with an error that names the config key and lists
the registered names. Imports nothing of synthgen but its errors, so every layer may use it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from synthgen.errors import ConfigError

T = TypeVar("T")


def register(table: dict[str, T], name: str, value: T, kind: str) -> T:
    """Add ``value`` to ``table`` under ``name`` and return it.

    Raises:
        ValueError: ``name`` is taken (``"{kind} {name!r} registered twice"``).
    """
    if name in table:
        raise ValueError(f"{kind} {name!r} registered twice")
    table[name] = value
    return value


def lookup(table: Mapping[str, T], name: str, key: str, kind: str) -> T:
    """Return ``table[name]``.

    Raises:
        ConfigError: unknown name: ``"{key}={name!r} is not a registered {kind}; choose one of [...]"``.
    """
    if name not in table:
        raise ConfigError(f"{key}={name!r} is not a registered {kind}; choose one of {sorted(table)}")
    return table[name]
