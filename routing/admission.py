"""Admission of a new INVITE from a trunk (RFC 3261 §8.2.3, §21.4.7, §21.4.13).

Before a call is answered: the body must be SDP we can read (415 with Accept
otherwise), the caller must accept SDP in our answers (406), and the dialed number
must belong to a service (404).
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.dialplan import DialPlan
from routing.diversion import Classifier, Redirection
from sip.message import Request

SDP = "application/sdp"


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """Answer the INVITE with `status` and these headers."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Admitted:
    """The call goes on to `service` (straight to `redirection.queue` when set)."""

    service: str
    dialed: str
    redirection: Redirection | None = None


def admit_invite(
    request: Request, dialplan: DialPlan, classifier: Classifier | None = None
) -> Admitted | Refused:
    """Decide what happens to a new INVITE from a trunk.

    Switchboard and "ricaduta" calls (diverted from Agenzia's extensions unanswered,
    RFC 5806 Diversion or RFC 7044 History-Info) go to Agenzia whatever was dialed.
    """
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if request.body and content_type != SDP:
        # §21.4.13: 415 lists what we accept.
        return Refused(status=415, headers=(("Accept", SDP),))
    if not _accepts_sdp(request.headers.values("accept")):
        # §21.4.7: our answer would be SDP, which the caller says it cannot read.
        warning = '399 centralino "answers carry application/sdp"'
        return Refused(status=406, headers=(("Warning", warning),))
    dialed = _dialed(request.uri)
    redirection = _redirection(request, classifier)
    if redirection is not None:
        return Admitted(service=redirection.service, dialed=dialed, redirection=redirection)
    service = dialplan.lookup(dialed) if dialed else None
    if service is None:
        return Refused(status=404)
    return Admitted(service=service, dialed=dialed)


def _redirection(request: Request, classifier: Classifier | None) -> Redirection | None:
    if classifier is None:
        return None
    return classifier.classify(
        caller=request.from_.uri.user,
        diversion=request.headers.get_all("diversion"),
        history_info=request.headers.get_all("history-info"),
    )


def _accepts_sdp(accept: list[str]) -> bool:
    # §20.1: no Accept header means application/sdp.
    if not accept:
        return True
    ranges = {value.split(";")[0].strip().lower() for value in accept}
    return bool(ranges & {SDP, "application/*", "*/*"})


def _dialed(uri: str) -> str:
    scheme, _, rest = uri.partition(":")
    if scheme.lower() == "tel":
        return uri
    user, at, _ = rest.partition("@")
    return user if at else ""
