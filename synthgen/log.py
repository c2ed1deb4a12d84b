"""synthgen's one logger: ``logging.getLogger("synthgen")``, configured once per process.

Library code logs through ``get_logger()`` (or ``logging.getLogger("synthgen")``, or a child such as
``synthgen.data.imagefolder``) and never configures anything. Entry points call ``setup_logging()``:
the CLI and ``jobs/*.py`` in the driver, ``train_loop_per_worker`` in every Ray Train worker. Lines go
to stderr as ``[synthgen] message`` (``[synthgen] WARNING: message`` from warnings up), so stdout
stays for results (``--dry-run`` YAML, metric tables). Progress bars stay tqdm.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

LOGGER_NAME = "synthgen"


class _Formatter(logging.Formatter):
    """``[synthgen] message``; warnings and errors name their level."""

    def format(self, record: logging.LogRecord) -> str:
        level = f"{record.levelname}: " if record.levelno >= logging.WARNING else ""
        text = f"[{LOGGER_NAME}] {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (pytest's capture, Ray's worker log file)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401 - the current stderr
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


def get_logger() -> logging.Logger:
    """The ``synthgen`` logger (unconfigured until an entry point calls ``setup_logging``)."""
    return logging.getLogger(LOGGER_NAME)


def setup_logging(level: int | str = logging.INFO, propagate: bool = True) -> logging.Logger:
    """Give the ``synthgen`` logger its one stderr handler (idempotent) and set its level.

    Args:
        level: the lowest level shown (``logging.INFO`` by default; ``"DEBUG"`` etc. accepted).
        propagate: also pass records to the root logger. Ray Train workers pass False: Ray gives
            their root logger a console handler of its own, which would print every line twice.

    Returns:
        The configured logger.
    """
    logger = get_logger()
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Formatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate
    return logger


def image_bar(total: int, desc: str, enabled: bool = True) -> Any:
    """A tqdm bar on stderr counting ``total`` images of stage ``desc`` (the sampling fleet's, the inversion's)."""
    from tqdm import tqdm

    return tqdm(
        total=total, unit="img", desc=desc, disable=not enabled, file=sys.stderr, dynamic_ncols=True, smoothing=0.1
    )
