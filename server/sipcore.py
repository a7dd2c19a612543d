"""Assemble the SIP endpoint from the configuration (the runtime's only SIP wiring)."""

from __future__ import annotations

from server.config import Settings
from server.ids import SecureIds
from sip.digest import DigestAuthenticator
from sip.endpoint import Endpoint, EndpointConfig
from sip.registrar import Registrar
from sip.timers import TimerConfig
from sip.transaction_layer import TransactionLayer


def build_endpoint(settings: Settings, *, now: float) -> Endpoint:
    """The endpoint for `settings`: transaction layer, digest registrar and policy."""
    del now  # nothing is scheduled before the first input
    ids = SecureIds()
    sip = settings.sip
    passwords = {op.id: op.password for op in settings.operators}
    authenticator = DigestAuthenticator(
        sip.realm,
        ids.nonce_secret(),
        credentials=passwords.get,
        algorithms=tuple(sip.digest_algorithms),
    )
    registrar = Registrar(
        authenticator,
        min_expires=sip.min_expires,
        max_expires=sip.max_expires,
        default_expires=min(sip.max_expires, max(sip.min_expires, 3600)),
        ping_interval=sip.options_ping_interval,
        tag_factory=ids.tag,
    )
    timers = TimerConfig(t1=sip.timers.t1, t2=sip.timers.t2, t4=sip.timers.t4)
    layer = TransactionLayer(
        local_host=sip.listen.host, local_port=sip.listen.port, ids=ids, config=timers
    )
    config = EndpointConfig(
        is_trunk=lambda host: settings.trunk_for(host) is not None,
        local=(sip.listen.host, sip.listen.port),
        user_agent=sip.user_agent,
        max_message_size=sip.max_message_size,
    )
    return Endpoint(config, layer=layer, registrar=registrar, ids=ids)
