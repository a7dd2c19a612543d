"""Digest authentication of the INVITEs an operator's phone sends us (RFC 3261 §22).

A new INVITE from a registered phone's address (`IncomingRequest.operator`) is only a
hint: UDP source addresses can be forged.  So, as Asterisk challenges every INVITE of a
peer with a secret, the calls an operator places through us (feature codes, and
consultation calls that go out through the trunk) carry credentials checked as the
registrar checks a REGISTER: the same realm, passwords and nonces.

| the INVITE                                     | answer                       |
| ---------------------------------------------- | ---------------------------- |
| no credentials, or a stale or foreign nonce    | 401 with a digest challenge  |
| the password of the operator of this phone     | accepted (None)              |
| wrong password, unknown user, another operator | 403 Forbidden                |
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sip.authenticator import AuthFailure
from sip.endpoint import IncomingRequest
from sip.message import Response, make_response

if TYPE_CHECKING:
    from routing.b2bua import B2bua

log = logging.getLogger(__name__)

_REFUSED_CREDENTIALS = (AuthFailure.BAD_RESPONSE, AuthFailure.UNKNOWN_USER)


def authenticate(
    b2bua: B2bua, event: IncomingRequest, operator: str, *, what: str, now: float
) -> Response | None:
    """None when the credentials are the phone's operator's; else the response to send
    (`what` names the call in the log: "feature code", "consultation")."""
    authenticator = b2bua.endpoint.registrar.authenticator
    result = authenticator.verify(event.request, now=now)
    if result.ok and result.username == operator:
        return None
    if result.ok or result.failure in _REFUSED_CREDENTIALS:
        log.info(
            "%s from %s with credentials of %r refused", what, operator, result.claimed_username
        )
        response = make_response(event.request, 403, to_tag=b2bua.ids.tag())
    else:
        response = authenticator.challenge(
            event.request, now=now, stale=result.stale, to_tag=b2bua.ids.tag()
        )
    response.headers.add("Server", b2bua.config.user_agent)
    return response
