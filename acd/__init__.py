"""Automatic call distribution: skill queues, operators and strategies, without I/O.

`AcdEngine` (acd.engine) is the entry point; `acd.config` holds its pydantic
configuration, `acd.events` what it emits, `acd.feature_codes` the operators' codes,
`acd.transfer` blind transfers from one operator to another.
"""

from acd.config import AcdConfig, OperatorConfig, OverflowAction, QueueConfig, parse_acd_config
from acd.engine import AcdEngine
from acd.errors import AcdConfigError, AcdError
from acd.events import Disposition, OfferFailure
from acd.feature_codes import FeatureAction, FeatureCommand, parse_feature_code
from acd.operator import OperatorState

__all__ = [
    "AcdConfig",
    "AcdConfigError",
    "AcdEngine",
    "AcdError",
    "Disposition",
    "FeatureAction",
    "FeatureCommand",
    "OfferFailure",
    "OperatorConfig",
    "OperatorState",
    "OverflowAction",
    "QueueConfig",
    "parse_acd_config",
    "parse_feature_code",
]
