"""The generic config machinery: typed ``from_dict`` / ``to_dict``, dotted overrides, YAML in and out.

Works on any tree of frozen dataclasses (the stage configs live in ``synthgen.config``, which re-exports
these functions): unknown keys are rejected with the valid ones listed, every value's type is checked,
YAML is read with ``yaml.safe_load``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import yaml

from synthgen.errors import ConfigError

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check (and lightly coerce int->float) ``value`` against annotation ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:  # ``X | None``: X's own message says what is wrong
            raise errors[0]
        raise ConfigError(f"{where}: expected {tp}, got {value!r} ({type(value).__name__})")
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{where}: expected a mapping of names to values, got {value!r}")
        return dict(value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r} ({type(value).__name__})")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, str) and hasattr(tp, "from_text"):  # a value written as text, e.g. judge:0.9
            return tp.from_text(value)
        return from_dict(tp, value, where)
    else:
        return value
    raise ConfigError(
        f"{where}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__}); "
        f"fix the value in the YAML file or the --set override"
    )


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys and wrong types.

    Raises:
        ConfigError: unknown key (the message lists the valid ones) or a value of the wrong type.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        hint = getattr(cls, "UNKNOWN_KEY_HINT", "")
        if isinstance(hint, dict):  # hints for particular keys only
            hint = next((hint[key] for key in unknown if key in hint), "")
        raise ConfigError(
            f"{where}: unknown key(s) {unknown}; valid keys are: {sorted(fields)}"
            + (f"; {hint.format(key=unknown[0])}" if hint else "")
        )
    kwargs = {name: _coerce(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Return a plain nested dict of a config dataclass (YAML/JSON friendly); values with ``to_text`` as text."""
    return _plain(cfg)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_text"):
            return value.to_text()
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def check_ranges(checks: Iterable[tuple[bool, str, Any, str]]) -> None:
    """Raise on the first ``(holds, key, value, what is allowed)`` check that does not hold.

    Raises:
        ConfigError: ``"{key}={value!r} is invalid: must be {allowed}"``.
    """
    for ok, key, value, allowed in checks:
        if not ok:
            raise ConfigError(f"{key}={value!r} is invalid: must be {allowed}")


def check_minimums(cfg: Any, minimums: Mapping[str, int | tuple[int, str]]) -> None:
    """Check that each dotted key of ``cfg`` is at least its minimum, in table order.

    Args:
        cfg: a config dataclass.
        minimums: dotted key -> its smallest allowed value, or (that value, what the message adds after
            ``>= N``, e.g. ``" (0 = off)"`` or ``", e.g. 16"``).

    Raises:
        ConfigError: as ``check_ranges``, e.g. ``train.steps=0 is invalid: must be >= 1``.
    """
    for key, bound in minimums.items():
        minimum, note = bound if isinstance(bound, tuple) else (bound, "")
        value = functools.reduce(getattr, key.split("."), cfg)
        check_ranges([(value >= minimum, key, value, f">= {minimum}{note}")])


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"train.steps=100"`` into (["train", "steps"], 100) with the value parsed as YAML.

    Raises:
        ConfigError: the override is not of the form ``dotted.key=value``.
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. train.steps=100")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {text!r} has an empty key; use section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted overrides applied (validated later by ``from_dict``)."""
    out: dict[str, Any] = _deepcopy_dict(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return out


def _deepcopy_dict(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deepcopy_dict(v) if isinstance(v, dict) else v for k, v in data.items()}


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``.

    Raises:
        ConfigError: the file is missing, not valid YAML, or not a mapping.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist; pass an existing YAML file to --config")
    with open(path, encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path!r} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path!r} must hold a mapping of sections, got {type(data).__name__}")
    return data


def config_data(path: str | os.PathLike[str] | None, flags: dict[str, Any]) -> dict[str, Any]:
    """Read the YAML at ``path`` (if any) and apply explicit CLI flags ``{config key: value}`` over it.

    Flags whose value is None were not given and leave the file's value alone. ``--set`` overrides
    come after this (``apply_overrides``).
    """
    data = read_yaml(path) if path else {}
    data.update({key: value for key, value in flags.items() if value is not None})
    return data


def load_config(
    cls: type[T],
    path: str | os.PathLike[str] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> T:
    """Load config ``cls`` from an optional YAML file plus dotted overrides.

    Args:
        cls: the top-level config dataclass (e.g. ``ExperimentConfig``).
        path: YAML file, or None for defaults only.
        overrides: ``section.key=value`` strings, applied after the file.

    Returns:
        The validated, frozen config.

    Raises:
        ConfigError: missing file, bad YAML, unknown key, wrong type or invalid value.
    """
    data = read_yaml(path) if path is not None else {}
    cfg = from_dict(cls, apply_overrides(data, list(overrides)))
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg


def dump_yaml(cfg: Any) -> str:
    """Return the resolved config as YAML text (what --dry-run prints and runs save)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
