"""IVR trees and their interpreter: menus, prompts, timeouts, retries, languages.

``ivr`` knows nothing of SIP: an :class:`IvrRun` takes digits, prompt ends, hang-ups
and timer ticks, and emits commands (play, enqueue, transfer, voicemail, hang up) and
timestamped facts for the KPI event log.
"""

from ivr.check import ConfigProblem, check_services
from ivr.config import ServiceConfig, ServiceConfigError, load_services
from ivr.engine import IvrRun, Phase
from ivr.notice import Notice, Notices

__all__ = [
    "ConfigProblem",
    "IvrRun",
    "Notice",
    "Notices",
    "Phase",
    "ServiceConfig",
    "ServiceConfigError",
    "check_services",
    "load_services",
]
