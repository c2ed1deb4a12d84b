"""Typed errors. Every message names the problem and the fix."""


class SynthgenError(Exception):
    """Base class of every error synthgen raises on purpose."""


class ConfigError(SynthgenError, ValueError):
    """A config file, key, value or override is invalid."""


class DataError(SynthgenError):
    """Real image data is missing, unreadable or inconsistent."""


class CheckpointError(SynthgenError):
    """A checkpoint is missing, incomplete or incompatible."""


class ShardError(SynthgenError):
    """A shard dataset is missing, corrupted or conflicts with the request."""


class TrainingDivergedError(SynthgenError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingFailedError(SynthgenError):
    """Training failed more often than ``train.max_failures`` allows."""


class StorageError(SynthgenError):
    """A local folder or URI cannot be opened, read or written."""
