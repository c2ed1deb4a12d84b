"""Checkpoint files: write, find and load them (``torch.load(..., weights_only=True)``).

A checkpoint is a folder ``<run_dir>/checkpoint-000500/`` holding:
    model.pt     dict of tensors/primitives only: ``make_payload`` writes it and
                 ``restore_training_state`` reads the training keys back (the two stay side by side)
    config.yaml  the resolved ExperimentConfig that produced it
Ray Train copies the folder into storage; a checkpoint counts as complete only when ``model.pt``
exists (it is written under a temporary name and renamed, so a crash never leaves a partial one).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

import synthgen
from synthgen.config import ExperimentConfig, dump_yaml, from_dict, to_dict, upgrade_legacy_config
from synthgen.errors import CheckpointError
from synthgen.storage import atomic_write_text, file_sha256, is_uri, open_location

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.yaml"
FORMAT_VERSION = 1
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_name(step: int) -> str:
    """Zero-padded, sortable checkpoint folder name, e.g. ``checkpoint-000500``."""
    return f"checkpoint-{step:06d}"


def step_of(path: str) -> int:
    """Step encoded in a ``checkpoint-NNNNNN`` folder name.

    Raises:
        CheckpointError: the folder name is not of that form.
    """
    match = _CKPT_RE.match(os.path.basename(path.rstrip("/")))
    if not match:
        raise CheckpointError(f"{path!r} is not a checkpoint-NNNNNN folder")
    return int(match.group(1))


class Stateful(Protocol):
    """Anything with torch-style ``state_dict`` / ``load_state_dict`` (modules, optimizers, LeCam)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


@dataclass(frozen=True)
class TrainingState:
    """The live objects a run continues with after a restart (references, not copies).

    ``make_payload`` saves each field under the payload key of the same name and
    ``restore_training_state`` loads each one back, so the two cannot drift apart.
    """

    generator: nn.Module  # G (bare or DDP-wrapped)
    discriminator: nn.Module  # D (bare or DDP-wrapped)
    generator_ema: nn.Module  # the averaged generator: what sampling uses
    opt_g: torch.optim.Optimizer  # G's optimizer (Adam moments, step counts)
    opt_d: torch.optim.Optimizer  # D's optimizer
    lecam: Stateful | None = None  # LeCam's running logit averages; None outside training


_NETWORKS = ("generator", "discriminator", "generator_ema")  # saved as CPU tensor copies
_OPTIMIZERS = ("opt_g", "opt_d")  # saved as optimizer state dicts


def make_payload(
    state: TrainingState,
    *,
    step: int,
    config: ExperimentConfig,
    class_names: tuple[str, ...] | list[str],
    image_shape: tuple[int, int, int],
    train_seconds: float = 0.0,
) -> dict[str, Any]:
    """Gather everything a resume or a sampler needs, as weights_only-loadable data.

    Args:
        state: the networks and optimizers to save.
        step: the last completed optimizer step.
        config: the resolved config of the run.
        class_names: label index -> name.
        image_shape: (C, H, W).
        train_seconds: wall-clock seconds of step loop spent up to ``step`` (``train.max_minutes`` budget).

    Returns:
        The payload ``write_checkpoint_dir`` saves as ``model.pt``.
    """
    payload: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "synthgen_version": synthgen.__version__,
        "step": int(step),
        "config": to_dict(config),
        "class_names": list(class_names),
        "image_shape": [int(s) for s in image_shape],
        "train_seconds": float(train_seconds),
    }
    for key in _NETWORKS:
        payload[key] = _cpu_state(getattr(state, key))
    for key in _OPTIMIZERS:
        payload[key] = getattr(state, key).state_dict()
    payload["lecam"] = dict(state.lecam.state_dict()) if state.lecam is not None else {}
    return payload


def restore_training_state(payload: dict[str, Any], state: TrainingState) -> int:
    """Load a payload's networks, optimizers and LeCam averages into ``state``; return its step.

    The inverse of ``make_payload``: a run restored from it continues at ``step + 1`` exactly as if
    it had never stopped (up to the random draws after the checkpoint).

    Raises:
        CheckpointError: the payload lacks a training key or its tensors do not fit the networks
            (a checkpoint of another architecture or width).
    """
    missing = [key for key in (*_NETWORKS, *_OPTIMIZERS, "step") if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint lacks {missing}: it cannot resume training; start a new run.name")
    try:
        for key in _NETWORKS:
            getattr(getattr(state, key), "module", getattr(state, key)).load_state_dict(payload[key])  # unwrap DDP
        for key in _OPTIMIZERS:
            getattr(state, key).load_state_dict(payload[key])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint does not fit this run's networks ({exc}); resume with the config it was trained with"
        ) from exc
    if state.lecam is not None and payload.get("lecam"):  # {} when written outside training
        state.lecam.load_state_dict(payload["lecam"])
    return int(payload["step"])


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    module = getattr(module, "module", module)  # unwrap DDP
    return {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}


def write_checkpoint_dir(directory: str, payload: dict[str, Any], config: ExperimentConfig) -> str:
    """Write ``model.pt`` (atomically) and ``config.yaml`` into ``directory``; return it."""
    os.makedirs(directory, exist_ok=True)
    atomic_write_text(os.path.join(directory, CONFIG_FILE), dump_yaml(config))
    tmp = os.path.join(directory, f".{MODEL_FILE}.tmp-{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, os.path.join(directory, MODEL_FILE))
    return directory


def list_checkpoints(run_dir: str) -> list[tuple[int, str]]:
    """Return complete checkpoints in ``run_dir`` (a folder or a URI) as sorted (step, path) pairs; a URI run folder's
    paths are URIs.

    Raises:
        StorageError: a URI whose filesystem cannot be opened.
    """
    if is_uri(run_dir):
        fs, root = open_location(run_dir)
        return [(step, f"{run_dir.rstrip('/')}/{path.rsplit('/', 1)[1]}") for step, path in _uri_checkpoints(fs, root)]
    if not os.path.isdir(run_dir):
        return []
    found = []
    for name in os.listdir(run_dir):
        match = _CKPT_RE.match(name)
        path = os.path.join(run_dir, name)
        if match and os.path.isfile(os.path.join(path, MODEL_FILE)):
            found.append((int(match.group(1)), path))
    return sorted(found)


def _uri_checkpoints(fs: Any, root: str) -> list[tuple[int, str]]:
    """Sorted (step, path on ``fs``) of the complete checkpoint-NNNNNN folders under ``root`` of a pyarrow
    filesystem; [] when ``root`` does not exist."""
    import pyarrow.fs as pafs

    if fs.get_file_info(root).type != pafs.FileType.Directory:
        return []
    found = []
    for entry in fs.get_file_info(pafs.FileSelector(root)):
        match = _CKPT_RE.match(entry.base_name)
        if match and fs.get_file_info(f"{entry.path}/{MODEL_FILE}").type == pafs.FileType.File:
            found.append((int(match.group(1)), entry.path))
    return sorted(found)


def _fetch_uri(uri: str) -> str:
    """Copy a remote checkpoint or run folder's latest checkpoint to a local temp folder.

    Raises:
        StorageError: the URI's filesystem cannot be opened (unknown scheme, missing credentials).
        CheckpointError: nothing complete at ``uri``.
    """
    import pyarrow.fs as pafs

    fs, root = open_location(uri)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise CheckpointError(f"checkpoint {uri!r} does not exist; pass a run folder or a checkpoint-NNNNNN folder")
    target = root
    if fs.get_file_info(f"{root}/{MODEL_FILE}").type != pafs.FileType.File:
        steps = _uri_checkpoints(fs, root)
        if not steps:
            raise CheckpointError(f"{uri!r} holds no complete checkpoint-NNNNNN folder with {MODEL_FILE}")
        target = max(steps)[1]
    local = tempfile.mkdtemp(prefix="synthgen-ckpt-")
    for name in (MODEL_FILE, CONFIG_FILE):
        src = f"{target}/{name}"
        if fs.get_file_info(src).type == pafs.FileType.File:
            pafs.copy_files(src, os.path.join(local, name), source_filesystem=fs)
    return local


def resolve_checkpoint(path: str) -> str:
    """Turn a run folder or checkpoint folder (local or URI) into a local checkpoint folder.

    A run folder resolves to its latest complete checkpoint.

    Raises:
        CheckpointError: nothing complete is found at ``path``.
    """
    path = os.fspath(path)
    if is_uri(path) and not path.startswith("file://"):
        return _fetch_uri(path)
    if path.startswith("file://"):
        path = path[len("file://") :]
    if os.path.isfile(path) and os.path.basename(path) == MODEL_FILE:
        return os.path.dirname(path)
    if not os.path.isdir(path):
        raise CheckpointError(
            f"checkpoint {path!r} does not exist; pass a run folder (runs/<name>) "
            "or one of its checkpoint-NNNNNN folders"
        )
    if os.path.isfile(os.path.join(path, MODEL_FILE)):
        return path
    ckpts = list_checkpoints(path)
    if not ckpts:
        raise CheckpointError(
            f"{path!r} holds no complete checkpoint (no checkpoint-NNNNNN/{MODEL_FILE}); "
            "train first with `synthgen train` or pass a checkpoint folder"
        )
    return ckpts[-1][1]


def load_payload(path: str) -> dict[str, Any]:
    """Load ``model.pt`` of a checkpoint (run folder, checkpoint folder, file or URI) on the CPU.

    Raises:
        CheckpointError: missing, truncated or not a synthgen checkpoint.
    """
    folder = resolve_checkpoint(path)
    file = os.path.join(folder, MODEL_FILE)
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        raise CheckpointError(f"cannot load checkpoint {file!r}: {exc}. Is the file complete?") from exc
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{file!r} is not a synthgen checkpoint (format_version {FORMAT_VERSION} expected)")
    # checkpoints from before model.arch have flat model widths: read them as the new layout
    payload["config"] = upgrade_legacy_config(payload["config"])
    payload["_path"] = folder
    return payload


@dataclass(frozen=True)
class CheckpointInfo:
    path: str  # local checkpoint folder
    digest: str  # sha256 of model.pt: identifies the exact weights
    step: int  # training step the weights are from
    config: ExperimentConfig  # resolved config of the run
    class_names: tuple[str, ...]  # label index -> name
    image_shape: tuple[int, int, int]  # (C, H, W)
    synthgen_version: str  # version that wrote it


def load_generator(path: str, use_ema: bool = True, device: str = "cpu") -> tuple[nn.Module, CheckpointInfo]:
    """Rebuild the generator of a checkpoint in eval mode.

    Args:
        path: run folder, checkpoint folder or URI.
        use_ema: load the EMA weights (what sampling uses) instead of the raw generator.
        device: torch device for the returned module.

    Returns:
        (generator, info).

    Raises:
        CheckpointError: no loadable checkpoint at ``path``.
    """
    from synthgen.models import build_models

    payload = load_payload(path)
    config = from_dict(ExperimentConfig, payload["config"])
    shape = tuple(payload["image_shape"])
    names = tuple(payload["class_names"])
    generator, _ = build_models(config.model, shape, len(names))  # type: ignore[arg-type]
    generator.load_state_dict(payload["generator_ema" if use_ema else "generator"])
    generator.to(device).eval()
    info = CheckpointInfo(
        path=payload["_path"],
        digest=file_sha256(os.path.join(payload["_path"], MODEL_FILE)),
        step=int(payload["step"]),
        config=config,
        class_names=names,
        image_shape=shape,  # type: ignore[arg-type]
        synthgen_version=str(payload["synthgen_version"]),
    )
    return generator, info
