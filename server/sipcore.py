"""Assemble the pure core (endpoint, call control, ACD) from the configuration."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from acd.config import AcdConfig, OperatorConfig
from acd.engine import AcdEngine
from media.session import G729, PCMA, PCMU
from routing.b2bua import B2bua, B2buaConfig
from routing.calendar import Calendar
from routing.dialplan import DialPlan
from routing.diversion import Classifier
from routing.media_plane import MediaPlane
from routing.recorder import Recorder
from server.config import Settings
from sip.authenticator import DigestAuthenticator
from sip.endpoint import Endpoint, EndpointConfig
from sip.ids import IdFactory
from sip.registrar import Registrar
from sip.timers import TimerConfig
from sip.transaction_layer import TransactionLayer


class Ids(IdFactory, Protocol):
    """Identifiers, plus the secret the digest nonces are keyed with."""

    def nonce_secret(self) -> bytes:
        """A fresh random secret."""
        ...


def build_endpoint(settings: Settings, ids: Ids) -> Endpoint:
    """The endpoint for `settings`: transaction layer, digest registrar and policy."""
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


def build_acd(settings: Settings, *, now: float) -> AcdEngine:
    """The ACD engine with the configured queues and operators."""
    operators = [
        OperatorConfig(id=op.id, name=op.name, skills=op.skills) for op in settings.operators
    ]
    return AcdEngine(AcdConfig(queues=settings.queues, operators=operators), now=now)


def build_b2bua(
    settings: Settings,
    *,
    endpoint: Endpoint,
    media: MediaPlane,
    recorder: Recorder,
    calendar: Calendar,
    wall: Callable[[float], datetime],
    ids: Ids,
    now: float,
    g729: bool = True,
) -> B2bua:
    """Call control over the endpoint, the media plane and the ACD."""
    sip = settings.sip
    numbers = {sid: service.numbers for sid, service in settings.services.items()}
    config = B2buaConfig(
        local=(sip.listen.host, sip.listen.port),
        user_agent=sip.user_agent,
        inband_dtmf=lambda host: bool((t := settings.trunk_for(host)) and t.inband_dtmf),
        # G.729 is offered and accepted only when libbcg729 loaded (issue 3).
        codecs=(PCMU, PCMA, G729) if g729 else (PCMU, PCMA),
        hold_music=settings.calls.hold_music,
        transfer_timeout=settings.calls.transfer_timeout,
        referent_trunk=_outbound(settings),
        queue_prefix=settings.calls.queue_prefix,
        callback_ring_timeout=settings.calls.callback_ring_timeout,
    )
    return B2bua(
        config,
        endpoint=endpoint,
        media=media,
        acd=build_acd(settings, now=now),
        services=settings.services,
        dialplan=DialPlan.from_services(numbers),
        calendar=calendar,
        recorder=recorder,
        ids=ids,
        fraction=random.random,
        wall=wall,
        classifier=Classifier(settings.ricaduta),
    )


def _outbound(settings: Settings) -> tuple[str, int] | None:
    """The configured address calls out go to, if a trunk names one."""
    for trunk in settings.trunks:
        if trunk.outbound is not None:
            return trunk.outbound.host, trunk.outbound.port
    return None
