"""Editing a user's Gateway API HTTPRoute: only what is Ramp's. Pure.

A Rollout may name HTTPRoutes whose rules send requests to its Services (canary: the stable
and canary Services; blue-green: the active and preview Services). Ramp writes exactly two
things in such a route, and nothing else:

- the ``weight`` of each backendRef that names one of the Rollout's Services (a Service of
  the route's namespace; ``group`` "" and ``kind`` Service, the defaults): in every rule
  that holds such backendRefs, they add up to 100 and the canary's share is the step's
  weight (a backend of someone else in the same rule keeps its own weight: its share is
  relative to those 100);
- rules Ramp added itself (header routes), recognised by their ``name``:
  ``ramp-<hash of the Rollout's name>-<header route>`` (:func:`rule_name`). They are added
  and removed whole.

Every write is a JSON patch (RFC 6902) of ``replace``/``add``/``remove`` operations on those
paths only, each guarded by ``test`` operations on the route's ``resourceVersion`` and on
the name of what it edits: a route someone else changed in between is refused by the API
server and read again, never overwritten. Every other rule, match, filter and field of the
route stays byte for byte as it was.

A weight counts as applied only when the gateway says so (:func:`acknowledgement`): each
entry of ``status.parents`` has ``Accepted`` and ``ResolvedRefs`` True with the route's
current ``metadata.generation`` as ``observedGeneration``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

KIND = "httproute"
GROUP = "gateway.networking.k8s.io"
VERSION = "v1"
PLURAL = "httproutes"
DEFAULT_WEIGHT = 1
"""A backendRef without ``weight`` has weight 1 (Gateway API)."""
MAX_RULES = 16
"""The HTTPRoute schema's limit on ``spec.rules``."""

_SECTION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
MatchType = Literal["Exact", "Prefix", "RegularExpression"]


@dataclass(frozen=True)
class HeaderMatch:
    """One header condition of a header route (Gateway API ``HTTPHeaderMatch``;
    ``Prefix`` is written as a regular expression, which the standard channel lacks)."""

    name: str
    value: str
    type: MatchType = "Exact"


@dataclass(frozen=True)
class HeaderRule:
    """Requests matching every header go to ``service``, whatever the weights."""

    name: str
    service: str
    matches: tuple[HeaderMatch, ...]


@dataclass(frozen=True)
class Ack:
    """What the gateway says of a route."""

    acknowledged: bool
    """Every parent accepted the current generation with its references resolved."""
    reason: str
    """Why not (empty when acknowledged)."""


@dataclass(frozen=True)
class RoutePatch:
    """A JSON patch of one HTTPRoute (the shell sends it as ``application/json-patch+json``)."""

    route: str
    ops: tuple[Mapping[str, Any], ...]
    router: str = KIND


def rule_prefix(rollout: str) -> str:
    """The name prefix of every rule Ramp adds for ``rollout`` (a hash keeps it short and
    tells two Rollouts sharing a route apart)."""
    return f"ramp-{hashlib.sha256(rollout.encode()).hexdigest()[:8]}-"


def rule_name(rollout: str, header: str) -> str:
    """The name of the rule of header route ``header``: a Gateway API ``SectionName``
    (at most 63 characters, lower case, digits and dashes).

    >>> rule_name("checkout", "beta-testers")
    'ramp-c7761e58-beta-testers'
    """
    prefix = rule_prefix(rollout)
    tail = "".join(c if c in _SECTION_CHARS else "-" for c in header.lower()).strip("-")
    if tail != header or len(prefix) + len(tail) > 63:
        # written apart from the name given (characters a section name cannot hold, or too
        # long): a hash of the name keeps two header routes apart
        digest = hashlib.sha256(header.encode()).hexdigest()[:6]
        tail = f"{tail[: 63 - len(prefix) - 7].strip('-')}-{digest}".strip("-")
    return prefix + tail


def _rules(route: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((route.get("spec") or {}).get("rules") or [])


def names_service(ref: Mapping[str, Any], namespace: str | None, services: Iterable[str]) -> bool:
    """A backendRef naming one of ``services`` in the route's own namespace."""
    if ref.get("group", "") not in ("", None) or ref.get("kind", "Service") != "Service":
        return False
    if ref.get("namespace") not in (None, namespace):
        return False
    return ref.get("name") in set(services)


def owned_rule(rule: Mapping[str, Any], rollout: str) -> bool:
    return str(rule.get("name") or "").startswith(rule_prefix(rollout))


def backend_weights(
    route: Mapping[str, Any], services: Sequence[str], rollout: str, complete: bool = False
) -> list[dict[str, int]]:
    """For each user rule of ``route`` that sends requests to ``services`` (``complete``:
    to all of them, the rules whose weights Ramp writes): the weight of each of those
    Services (a rule Ramp added is left out)."""
    namespace = (route.get("metadata") or {}).get("namespace")
    found = []
    for rule in _rules(route):
        if owned_rule(rule, rollout):
            continue
        weights: dict[str, int] = {}
        for ref in rule.get("backendRefs") or []:
            if names_service(ref, namespace, services):
                name = str(ref["name"])
                weights[name] = weights.get(name, 0) + int(ref.get("weight", DEFAULT_WEIGHT))
        if weights and (not complete or len(weights) == len(set(services))):
            found.append(weights)
    return found


def problems(route: Mapping[str, Any] | None, name: str, services: Sequence[str]) -> str | None:
    """Why Ramp cannot route through this HTTPRoute (None: it can)."""
    if route is None:
        return f"HTTPRoute {name!r} does not exist"
    if not backend_weights(route, services, "", complete=True):
        return (
            f"HTTPRoute {name!r} has no rule with backendRefs to both Services "
            f"{' and '.join(services)}"
        )
    return None


def acknowledgement(route: Mapping[str, Any]) -> Ack:
    """Whether the gateway applied the route's current generation.

    >>> ok = [{"type": t, "status": "True", "observedGeneration": 2}
    ...       for t in ("Accepted", "ResolvedRefs")]
    >>> acknowledgement({"metadata": {"generation": 2},
    ...                  "status": {"parents": [{"conditions": ok}]}})
    Ack(acknowledged=True, reason='')
    """
    generation = int((route.get("metadata") or {}).get("generation") or 0)
    parents = ((route.get("status") or {}).get("parents")) or []
    if not parents:
        return Ack(False, "no gateway has accepted the route yet (status.parents is empty)")
    for parent in parents:
        ref = parent.get("parentRef") or {}
        where = f"parent {ref.get('name', '?')}"
        conditions = {c.get("type"): c for c in parent.get("conditions") or []}
        for kind in ("Accepted", "ResolvedRefs"):
            cond = conditions.get(kind)
            if cond is None:
                return Ack(False, f"{where}: no {kind} condition yet")
            observed = int(cond.get("observedGeneration") or 0)
            if observed < generation:
                return Ack(
                    False, f"{where}: generation {generation} not seen yet ({kind} of {observed})"
                )
            if cond.get("status") != "True":
                why = cond.get("message") or cond.get("reason") or ""
                return Ack(False, f"{where}: {kind} is {cond.get('status')} ({why})".strip())
    return Ack(True, "")


def shares(weights: Mapping[str, int]) -> dict[str, float]:
    """Percent of a rule's requests (to the Rollout's Services) per Service."""
    total = sum(weights.values())
    if total <= 0:
        return {s: 0.0 for s in weights}
    return {s: 100.0 * w / total for s, w in weights.items()}


def revision_shares(
    rules: Iterable[Mapping[str, int]], served: Mapping[str, Mapping[str, int]]
) -> dict[str, int]:
    """Per revision, the largest percent of requests any rule sends it (rounded up): a
    Service's share goes to the revisions its ready endpoints belong to (``served``:
    Service -> revision -> ready endpoints), in proportion."""
    result: dict[str, float] = {}
    for rule in rules:
        per: dict[str, float] = {}
        for service, share in shares(rule).items():
            pods = {r: n for r, n in (served.get(service) or {}).items() if n > 0}
            total = sum(pods.values())
            for revision, n in pods.items():
                per[revision] = per.get(revision, 0.0) + share * n / total
        for revision, share in per.items():
            result[revision] = max(result.get(revision, 0.0), share)
    return {r: min(100, math.ceil(s - 1e-9)) for r, s in result.items() if s > 0}


def most(*shares: Mapping[str, int]) -> dict[str, int]:
    """The largest share of each revision over ``shares``."""
    result: dict[str, int] = {}
    for one in shares:
        for revision, share in one.items():
            result[revision] = max(result.get(revision, 0), share)
    return result


def assign(
    weights: Mapping[str, int],
    order: Sequence[tuple[str, str | None]],
    served: Mapping[str, Mapping[str, int]],
) -> dict[str, int] | None:
    """Backend weights (per Service, adding up to 100) that send each revision its share
    of ``weights`` (revision -> percent) through a Service that serves that revision
    only (``served``: its ready endpoints by revision); ``order`` lists the Services with
    the revision each is pinned to, the preferred first. A Service pinned to another
    revision carries none of it, whatever its lagging endpoints still list (it is moving
    away: make fuzz-for, seed 910736183). None while some revision with a share has no such
    Service yet (a pin not applied, endpoints not ready): nothing is written until it has.

    >>> assign({"s": 95, "c": 5}, [("stable", "s"), ("canary", "c")],
    ...        {"stable": {"s": 3}, "canary": {"c": 1}})
    {'stable': 95, 'canary': 5}
    >>> assign({"s": 95, "c": 5}, [("stable", "s"), ("canary", "c")],
    ...        {"stable": {"s": 3}, "canary": {"s": 3}}) is None
    True
    """
    result = {service: 0 for service, _ in order}

    def only(service: str) -> str | None:
        ready = [r for r, n in (served.get(service) or {}).items() if n > 0]
        return ready[0] if len(ready) == 1 else None

    for revision, share in weights.items():
        if share <= 0:
            continue
        candidates = [s for s, pinned in order if pinned == revision and only(s) == revision]
        candidates += [s for s, pinned in order if not pinned and only(s) == revision]
        if not candidates:
            return None
        result[candidates[0]] += share
    return result


def percent(rules: list[dict[str, int]], service: str) -> int:
    """The service's percent of the first rule that names it (0: none)."""
    for rule in rules:
        total = sum(rule.values())
        if service in rule:
            return round(100 * rule[service] / total) if total else 0
    return 0


def reseated(
    shares: Mapping[str, int],
    order: Sequence[tuple[str, str | None]],
    served: Mapping[str, Mapping[str, int]],
) -> dict[str, int] | None:
    """A route's current ``shares`` (revision -> percent), each through the preferred
    Service that serves that revision alone (:func:`assign`): no revision's share changes,
    only the Service carrying it. None when they are not one whole split. After a
    promotion the stable's 100 % is left on the canary Service (both pinned to it): it
    moves to the stable Service before a new release pins the canary Service to its new
    revision (make fuzz-for, seed 954848776).

    >>> reseated({"s": 100}, [("stable", "s"), ("canary", "c")],
    ...          {"stable": {"s": 3}, "canary": {"s": 3}})
    {'stable': 100, 'canary': 0}
    """
    if sum(shares.values()) != 100:
        return None
    return assign(shares, order, served)


def weight_ops(
    route: Mapping[str, Any], wanted: Mapping[str, int], rollout: str
) -> list[dict[str, Any]]:
    """JSON patch operations that set the weight of every backendRef naming a Service of
    ``wanted`` (Service -> weight) in the user's rules that name all of them (a rule that
    sends to one of them only is the user's split: left alone), only where it differs;
    each guarded by a ``test`` of the backendRef's name."""
    namespace = (route.get("metadata") or {}).get("namespace")
    ops: list[dict[str, Any]] = []
    for i, rule in enumerate(_rules(route)):
        if owned_rule(rule, rollout):
            continue
        refs = rule.get("backendRefs") or []
        named = {str(r.get("name")) for r in refs if names_service(r, namespace, wanted)}
        if named != set(wanted):
            continue
        seen: set[str] = set()
        for j, ref in enumerate(refs):
            if not names_service(ref, namespace, wanted):
                continue
            name = str(ref["name"])
            # A Service named twice in a rule: its first backendRef carries the weight.
            want = 0 if name in seen else wanted[name]
            seen.add(name)
            if "weight" in ref and int(ref["weight"]) == want:
                continue
            path = f"/spec/rules/{i}/backendRefs/{j}"
            ops.append({"op": "test", "path": f"{path}/name", "value": name})
            ops.append(
                {
                    "op": "replace" if "weight" in ref else "add",
                    "path": f"{path}/weight",
                    "value": want,
                }
            )
    return ops


def header_rule(
    rule: HeaderRule, base: Mapping[str, Any], port: int | None, rollout: str
) -> dict[str, Any]:
    """The rule Ramp adds for a header route: the matches of the user's rule ``base`` (or
    every path) with the header conditions added, its filters, and one backend: the
    header route's Service."""
    headers = [header_match(m) for m in rule.matches]
    matches = [
        dict(m) for m in base.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]
    ]
    for m in matches:
        m["headers"] = [*(m.get("headers") or []), *headers]
    ref: dict[str, Any] = {"name": rule.service, "weight": 1}
    if port is not None:
        ref["port"] = port
    result: dict[str, Any] = {"name": rule_name(rollout, rule.name), "matches": matches}
    if base.get("filters"):
        result["filters"] = list(base["filters"])
    result["backendRefs"] = [ref]
    return result


def header_match(m: HeaderMatch) -> dict[str, str]:
    if m.type == "Prefix":
        return {"type": "RegularExpression", "name": m.name, "value": "^" + _re_escape(m.value)}
    return {"type": m.type, "name": m.name, "value": m.value}


def _re_escape(text: str) -> str:
    return "".join("\\" + c if c in r".^$*+?()[]{}|\/" else c for c in text)


def header_ops(
    route: Mapping[str, Any],
    wanted: Sequence[HeaderRule],
    services: Sequence[str],
    rollout: str,
) -> list[dict[str, Any]]:
    """JSON patch operations that make the rules Ramp owns in ``route`` exactly the header
    rules of ``wanted`` (one per header route, based on the first user rule that sends
    requests to ``services``): a rule of Ramp's that differs or is no longer wanted is
    removed (last first, each guarded by a ``test`` of its name), a missing one added at
    the end. User rules are never touched."""
    rules = _rules(route)
    namespace = (route.get("metadata") or {}).get("namespace")
    base: Mapping[str, Any] = {}
    port = None
    for rule in rules:
        if owned_rule(rule, rollout):
            continue
        refs = [r for r in rule.get("backendRefs") or [] if names_service(r, namespace, services)]
        if {r.get("name") for r in refs} == set(services):
            base, port = rule, refs[-1].get("port")
            break
    want = [header_rule(h, base, port, rollout) for h in wanted]
    have = {i: r for i, r in enumerate(rules) if owned_rule(r, rollout)}
    keep: set[int] = set()
    ops: list[dict[str, Any]] = []
    for rule in want:
        same = next((i for i, r in have.items() if r == rule and i not in keep), None)
        if same is not None:
            keep.add(same)
    for i in sorted(set(have) - keep, reverse=True):
        ops.append({"op": "test", "path": f"/spec/rules/{i}/name", "value": have[i]["name"]})
        ops.append({"op": "remove", "path": f"/spec/rules/{i}"})
    kept = {have[i]["name"] for i in keep}
    for rule in want:
        if rule["name"] not in kept:
            ops.append({"op": "add", "path": "/spec/rules/-", "value": rule})
    return ops


def route_patch(route: Mapping[str, Any], ops: list[dict[str, Any]]) -> RoutePatch | None:
    """The patch of ``ops`` guarded by the route's ``resourceVersion`` (None: nothing to do)."""
    if not ops:
        return None
    meta = route.get("metadata") or {}
    guard = {
        "op": "test",
        "path": "/metadata/resourceVersion",
        "value": meta.get("resourceVersion"),
    }
    return RoutePatch(str(meta.get("name")), (guard, *ops))


def apply_ops(route: Mapping[str, Any], ops: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``route`` with a JSON patch of the operations this module writes applied (what the
    API server does; for tests and the simulated cluster). Raises ValueError when a
    ``test`` fails."""
    import copy

    doc: Any = copy.deepcopy(dict(route))
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if op["op"] == "test":
            have = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if have != op["value"]:
                raise ValueError(f"test failed at {op['path']}: {have!r} != {op['value']!r}")
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif isinstance(parent, list):
            if last == "-":
                parent.append(copy.deepcopy(op["value"]))
            elif op["op"] == "add":
                parent.insert(int(last), copy.deepcopy(op["value"]))
            else:
                parent[int(last)] = copy.deepcopy(op["value"])
        else:
            parent[last] = copy.deepcopy(op["value"])
    return dict(doc)
