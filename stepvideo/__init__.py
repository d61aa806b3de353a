"""StepVideo engine: our own Step-Video-T2V inference. Importing this package never imports torch."""

from .api import GenerationRequest, GenerationResult, event, validate
from .errors import (
    Cancelled,
    InvalidRequest,
    OutOfMemory,
    StepVideoError,
    WeightsMismatch,
    WeightsNotFound,
)
from .presets import PRESETS

__all__ = [
    "GenerationRequest", "GenerationResult", "event", "validate", "PRESETS",
    "StepVideoError", "InvalidRequest", "WeightsNotFound", "WeightsMismatch", "OutOfMemory", "Cancelled",
]
__version__ = "0.1.0"
