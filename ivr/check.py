"""``check_services``: the semantic checks behind ``centralino check-config``.

Pydantic checks each node's shape; this module checks what only the whole tree can
tell: references to nodes, prompts and queues that do not exist, nodes no caller can
reach, loops that never play anything, numbers claimed twice, and languages. Every
problem names its key path, e.g. ``services.trentino-digitale.ivr.menu.options.7``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from ivr.config import (
    LanguageNode,
    MenuNode,
    Node,
    NoticeNode,
    PlayNode,
    QueueNode,
    ScheduleNode,
    ServiceConfig,
)
from routing.dialplan import InvalidNumberError, normalise


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigProblem:
    """One configuration mistake, located by its key path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


# Nodes that move on without playing anything or waiting for the caller.
_SILENT = (LanguageNode, ScheduleNode, NoticeNode)


def node_links(node: Node) -> Iterator[tuple[str, str]]:
    """Yield (key suffix, target node id) for every reference a node makes."""
    if isinstance(node, PlayNode | LanguageNode | NoticeNode):
        yield "next", node.next
    elif isinstance(node, MenuNode):
        for digit, target in node.options.items():
            yield f"options.{digit}", target
        yield "default", node.default
    elif isinstance(node, ScheduleNode):
        yield "open", node.open
        yield "closed", node.closed
        if node.holiday is not None:
            yield "holiday", node.holiday


def node_prompts(node: Node) -> Iterator[tuple[str, str]]:
    """Yield (key suffix, prompt id) for every prompt a node plays."""
    for field in ("prompts", "invalid_prompts", "timeout_prompts"):
        for index, prompt in enumerate(getattr(node, field, ())):
            yield f"{field}.{index}", prompt


def check_services(
    config: Mapping[str, ServiceConfig],
    known_prompts: Collection[str],
    known_queues: Collection[str],
) -> list[ConfigProblem]:
    """Return every problem found in the services; an empty list means all is well."""
    problems: list[ConfigProblem] = []
    for service_id, service in config.items():
        base = f"services.{service_id}"
        problems += _check_references(base, service, known_prompts, known_queues)
        problems += _check_reachable(base, service)
        problems += _check_silent_loops(base, service)
        problems += _check_languages(base, service)
    problems += _check_numbers(config)
    return problems


def _check_references(
    base: str, service: ServiceConfig, prompts: Collection[str], queues: Collection[str]
) -> Iterator[ConfigProblem]:
    if service.entry not in service.ivr:
        yield ConfigProblem(path=f"{base}.entry", message=f"unknown node {service.entry!r}")
    for node_id, node in service.ivr.items():
        path = f"{base}.ivr.{node_id}"
        for key, target in node_links(node):
            if target not in service.ivr:
                yield ConfigProblem(path=f"{path}.{key}", message=f"unknown node {target!r}")
        for key, prompt in node_prompts(node):
            if prompt not in prompts:
                yield ConfigProblem(path=f"{path}.{key}", message=f"unknown prompt {prompt!r}")
        if isinstance(node, QueueNode) and node.queue not in queues:
            yield ConfigProblem(path=f"{path}.queue", message=f"unknown queue {node.queue!r}")


def reachable(service: ServiceConfig) -> set[str]:
    """Node ids a caller can reach from the service's entry node."""
    seen: set[str] = set()
    stack = [service.entry]
    while stack:
        node_id = stack.pop()
        if node_id in seen or node_id not in service.ivr:
            continue
        seen.add(node_id)
        stack.extend(target for _, target in node_links(service.ivr[node_id]))
    return seen


def _check_reachable(base: str, service: ServiceConfig) -> Iterator[ConfigProblem]:
    if service.entry not in service.ivr:
        return
    seen = reachable(service)
    for node_id in service.ivr:
        if node_id not in seen:
            message = f"node {node_id!r} is unreachable from entry {service.entry!r}"
            yield ConfigProblem(path=f"{base}.ivr.{node_id}", message=message)


def _check_silent_loops(base: str, service: ServiceConfig) -> Iterator[ConfigProblem]:
    """A cycle of schedule/language/notice nodes would spin without the caller hearing."""
    reported: set[str] = set()
    for start in service.ivr:
        path = _silent_cycle(service, start)
        if path and path[0] not in reported:
            reported.update(path)
            yield ConfigProblem(
                path=f"{base}.ivr.{path[0]}",
                message="loop that plays nothing: " + " -> ".join([*path, path[0]]),
            )


def _silent_cycle(service: ServiceConfig, start: str) -> list[str]:
    trail: list[str] = []
    frontier = [(start, [start])]
    while frontier:
        node_id, trail = frontier.pop()
        node = service.ivr.get(node_id)
        if not isinstance(node, _SILENT):
            continue
        for _, target in node_links(node):
            if target == start:
                return trail
            if target not in trail:
                frontier.append((target, [*trail, target]))
    return []


def _check_languages(base: str, service: ServiceConfig) -> Iterator[ConfigProblem]:
    languages = service.languages
    if languages.default not in languages.available:
        yield ConfigProblem(
            path=f"{base}.languages.default",
            message=f"{languages.default!r} is not in available {languages.available}",
        )
    for digit, language in languages.switch.items():
        if language not in languages.available:
            message = f"{language!r} is not an available language"
            yield ConfigProblem(path=f"{base}.languages.switch.{digit}", message=message)
    for node_id, node in service.ivr.items():
        if isinstance(node, LanguageNode) and node.language not in languages.available:
            message = f"{node.language!r} is not an available language"
            yield ConfigProblem(path=f"{base}.ivr.{node_id}.language", message=message)
    yield from _check_welcome(base, service)


def _check_welcome(base: str, service: ServiceConfig) -> Iterator[ConfigProblem]:
    """Every other language must be reachable from the welcome by a digit."""
    if not any(isinstance(n, PlayNode) and n.welcome for n in service.ivr.values()):
        yield ConfigProblem(path=f"{base}.ivr", message="no welcome node (play, welcome: true)")
    missing = set(service.languages.available) - {service.languages.default}
    missing -= set(service.languages.switch.values())
    for language in sorted(missing):
        message = f"language {language!r} has no switch digit: unreachable from the welcome"
        yield ConfigProblem(path=f"{base}.languages.switch", message=message)


def _check_numbers(config: Mapping[str, ServiceConfig]) -> Iterator[ConfigProblem]:
    owners: dict[str, str] = {}
    for service_id, service in config.items():
        for index, raw in enumerate(service.numbers):
            path = f"services.{service_id}.numbers.{index}"
            try:
                canonical = normalise(raw)
            except InvalidNumberError as error:
                yield ConfigProblem(path=path, message=str(error))
                continue
            owner = owners.setdefault(canonical, service_id)
            if owner != service_id:
                yield ConfigProblem(path=path, message=f"{raw!r} already belongs to {owner!r}")
