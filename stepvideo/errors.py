"""Typed errors of the engine. Each carries a one-line message a user can act on."""

from __future__ import annotations


class StepVideoError(Exception):
    """Base of every error the engine raises on purpose. `kind` is the protocol's failure kind."""

    kind = "internal"
    exit_code = 1


class InvalidRequest(StepVideoError):
    """A request (or CLI argument) is outside what the engine allows."""

    kind = "invalid_request"
    exit_code = 2


class WeightsNotFound(StepVideoError):
    """A model folder or one of its files is missing."""

    kind = "weights_missing"
    exit_code = 2


class WeightsMismatch(StepVideoError):
    """Files on disk do not match the model built from its config (keys, shapes, truncation)."""

    kind = "weights_mismatch"
    exit_code = 2


class OutOfMemory(StepVideoError):
    """The planner refused the request, or the device ran out of memory."""

    kind = "out_of_memory"
    exit_code = 3


class UnsupportedGpu(StepVideoError):
    """The GPU lacks something the model needs (bf16 fused attention before Ampere); refused before
    anything loads, never halfway through a job."""

    kind = "unsupported_gpu"
    exit_code = 3


class Cancelled(StepVideoError):
    """The caller asked to stop; raised between steps."""

    kind = "cancelled"
    exit_code = 130


class Paused(StepVideoError):
    """The caller asked to pause; the job's checkpoint is on disk and it can resume."""

    kind = "paused"
    exit_code = 0


class OutputError(StepVideoError):
    """The finished video could not be written (disk full, folder gone). The job's last checkpoint is
    kept, so running it again costs only the last few steps."""

    kind = "output"
    exit_code = 1


class HubError(StepVideoError):
    """Downloading, verifying or deleting a model version failed."""

    kind = "hub"
    exit_code = 1


class ConfigError(StepVideoError):
    """A hub config.json holds a key or value this engine does not support."""

    kind = "weights_mismatch"
    exit_code = 2


class QueueDatabaseError(StepVideoError):
    """The job queue's database cannot be used (corrupt, unreadable, or written by a newer app).

    The file is never deleted or overwritten for the user: the message says how to move it aside."""

    kind = "internal"
    exit_code = 1
