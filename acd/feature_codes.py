"""Operators' feature codes, dialed from their softphone.

| dialed          | action        | effect                                                 |
| --------------- | ------------- | ------------------------------------------------------ |
| `*41`           | login         | logged out -> available                                |
| `*40`           | logout        | -> logged out (at the end of the call if on one)       |
| `*42`           | pause         | -> paused, reason "paused" (deferred if on a call)     |
| `*42` + digits  | pause         | reason from `AcdConfig.pause_reasons` for the digits;  |
|                 |               | dialed as `*421`, `*42*1` or `*42 1`                   |
| `*43`           | ready         | paused or wrap-up -> available; cancels a deferred     |
|                 |               | pause or logout                                        |
| `*44`           | wrap-up done  | wrap-up -> available before the wrap-up time ends      |
| `*45`           | resolved      | the operator's last answered call was resolved         |
| `*46`           | escalated     | the operator's last answered call went to 2nd level    |

A trailing `#` (the "send" key of many phones) is ignored, and so is the URI
escaping of `*` (`%2A`) a phone may put in the Request-URI (RFC 3261 §19.1.2 lets
`*` stand unescaped in a user part, but not every phone knows). Everything else is
not a feature code and `parse_feature_code` returns None, so routing treats it as a
normal dialed number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class FeatureAction(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    PAUSE = "pause"
    READY = "ready"
    WRAPUP_DONE = "wrapup_done"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


FEATURE_CODES: dict[str, FeatureAction] = {
    "*40": FeatureAction.LOGOUT,
    "*41": FeatureAction.LOGIN,
    "*42": FeatureAction.PAUSE,
    "*43": FeatureAction.READY,
    "*44": FeatureAction.WRAPUP_DONE,
    "*45": FeatureAction.RESOLVED,
    "*46": FeatureAction.ESCALATED,
}

_PAUSE_WITH_REASON = re.compile(r"^\*42(?:\*| )?([0-9]{1,4})$")


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureCommand:
    action: FeatureAction
    reason_code: str | None = None


def parse_feature_code(dialed: str) -> FeatureCommand | None:
    """Map a dialed string to a feature command, or None if it is not one."""
    text = dialed.strip().replace("%2A", "*").replace("%2a", "*").removesuffix("#")
    action = FEATURE_CODES.get(text)
    if action is not None:
        return FeatureCommand(action=action)
    match = _PAUSE_WITH_REASON.match(text)
    if match:
        return FeatureCommand(action=FeatureAction.PAUSE, reason_code=match.group(1))
    return None
