"""Test-only fault injection, set through the environment so user configs, ``--help`` and the config reference
show only what users set.

``SYNTHGEN_FAULTS="train.fail_at_step=9,sample.fail_after_batches=1"`` is read on the driver (the process
that calls ``train`` or ``run_sample``), which hands the values to its workers and actors explicitly: Ray's
workers may have been started before the variable was set (a test's shared cluster), so they never read it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from synthgen.errors import ConfigError

ENV_VAR = "SYNTHGEN_FAULTS"


@dataclass(frozen=True)
class Faults:
    train_fail_at_step: int = -1  # the last Ray Train rank kills its own process once at this step
    train_nan_at_step: int = -1  # the D loss becomes NaN at this step
    sample_fail_after_batches: int = -1  # actor 0 SIGKILLs itself after this many batches / chunks (first life)


def _keys() -> dict[str, str]:
    """Spelling in the variable (``train.fail_at_step``) -> dataclass field (``train_fail_at_step``)."""
    return {f.name.replace("_", ".", 1): f.name for f in dataclasses.fields(Faults)}


def parse_faults(text: str) -> Faults:
    """Parse ``key=int[,key=int...]``; ``""`` = no faults.

    Raises:
        ConfigError: an unknown key or a value that is not an integer; the message lists the valid keys.
    """
    keys, values = _keys(), {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        if key.strip() not in keys:
            raise ConfigError(f"{ENV_VAR}: unknown fault {key.strip()!r}; valid: {', '.join(sorted(keys))}")
        try:
            values[keys[key.strip()]] = int(value)
        except ValueError:
            raise ConfigError(f"{ENV_VAR}: {item!r} needs an integer value, e.g. {key.strip()}=3") from None
    return Faults(**values)


def from_env() -> Faults:
    """The faults ``SYNTHGEN_FAULTS`` asks for in this process (none when it is unset)."""
    return parse_faults(os.environ.get(ENV_VAR, ""))
