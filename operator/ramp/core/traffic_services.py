"""The first traffic router: Service selectors pinned to a revision. Pure.

Each Service a strategy names (canary: ``stableService`` / ``canaryService``;
blue-green: ``activeService`` / ``previewService``) gets Ramp's keys in its selector: the
Rollout's matchLabels and ``ramp.dev/revision`` of the revision it should select. The
requests a Service gets are split by kube-proxy over the ready endpoints it lists, so the
share of a revision is its share of ready pods: this router carries no weights of its
own (:meth:`ServicePins.acknowledged` is None) and the replica ratio is the split. What
the data plane has acknowledged is what each Service's EndpointSlices list
(:meth:`ServicePins.endpoints`): a strategy keeps a revision while a Service it switched
away from still lists its endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping

from ramp.api.labels import REVISION_LABEL
from ramp.core.draft import Draft
from ramp.core.model import Plan, ServicePin
from ramp.core.split import Split
from ramp.core.traffic import ServiceTarget, TrafficIntent


class ServicePins:
    """Pins each Service of the strategy to a revision (see the module)."""

    kind = "service"
    exact = False

    def describe(self) -> str:
        return "the Services' selectors"

    def exact_split(self, draft: Draft, weight: int) -> Split | None:
        del draft, weight
        return None  # the replica ratio is the split

    def problems(self, draft: Draft) -> str | None:
        del draft
        return None  # a missing Service is reported by the shell (it is not pinned)

    def acknowledged(self, draft: Draft) -> Mapping[str, int] | None:
        del draft
        return None  # no weights: the replica ratio is the split

    def carried(self, draft: Draft) -> Mapping[str, int] | None:
        del draft
        return None

    def route(self, draft: Draft, intent: TrafficIntent, plan: Plan) -> None:
        targets = [t for t in intent.targets if not narrowing_waits(draft, t, plan)]
        plan.services = pins(draft, [(t.service, t.revision) for t in targets])

    def release(self, draft: Draft, services: tuple[str, ...], plan: Plan) -> bool:
        plan.services = unpins(draft, services)
        return bool(plan.services)

    def endpoints(self, draft: Draft, service: str | None) -> Mapping[str, int] | None:
        """Ready endpoints by revision that ``service``'s EndpointSlices list (what
        kube-proxy sends requests to); None: not known."""
        if not service or service not in draft.obs.endpoints:
            return None
        return draft.obs.endpoints[service]


SERVICE_PINS = ServicePins()


def narrowing_waits(draft: Draft, target: ServiceTarget, plan: Plan) -> bool:
    """A Service Ramp has not pinned yet (no revision key in its selector: it may serve the
    pods of what ran before Ramp, e.g. the Deployment a Rollout replaces) is narrowed only
    once the revision serves ``narrow_at`` ready pods that stay (not those this plan
    scales away: make fuzz-for, seed 227800127, an HPA's 0 pinned the Services to pods
    going, then kept them there while the given-back Deployment served): never to fewer
    than it serves now."""
    seen = draft.obs.services.get(target.service or "")
    if not seen or REVISION_LABEL in seen:
        return False
    serving = draft.serving(target.revision)
    if plan.replicas is not None and target.revision in plan.replicas:
        serving = min(serving, plan.replicas[target.revision])
    return serving < target.narrow_at


def pins(draft: Draft, wanted: list[tuple[str | None, str | None]]) -> list[ServicePin]:
    """Pins for (Service, revision) pairs: the selector keys Ramp owns (the Rollout's
    matchLabels and the revision), only where the observed Service differs; a Service
    known to be absent gets none (the shell reports it).

    A pin selects the labels the revision's pods really carry (its template's, as
    written): a matchLabels key its pods lack (the selector changed after it was
    created) is left out, and a key of the Service that would select none of its pods
    -- a matchLabels key, or a label key of a revision Ramp ran -- is set to their value
    or removed. Keys nobody's pods carry (the user's own) are left alone."""
    base = dict(draft.spec.selector.match_labels or {})
    result = []
    for service, revision in wanted:
        if not service or not revision:
            continue
        seen = draft.obs.services.get(service, {"": ""})
        if seen is None:
            continue
        owned: dict[str, str | None] = {**base, REVISION_LABEL: revision}
        labels = pod_labels(draft, revision)
        if labels is not None:
            owned = {k: v for k, v in owned.items() if labels.get(k) == v}
            ramp_keys = label_keys(draft)
            for key, value in seen.items():
                if key not in owned and labels.get(key) != value and key in ramp_keys:
                    owned[key] = labels.get(key)  # its pods' value, or None: removed
        if all(seen.get(k) == v for k, v in owned.items()):
            continue
        result.append(ServicePin(service, owned, revision))
    return result


def pod_labels(draft: Draft, revision: str) -> dict[str, str] | None:
    """The labels the pods of ``revision`` carry (None: its template is not known)."""
    entry = draft.entry(revision)
    template = draft.obs.template if revision == draft.revision else None
    if template is None and entry is not None:
        template = entry.template
    if not template:
        child = draft.children.get(revision)
        if child is None or child.pod_labels is None:
            return None
        return {**dict(child.pod_labels), REVISION_LABEL: revision}  # pruned history
    labels = (template.get("metadata") or {}).get("labels") or {}
    return {**labels, REVISION_LABEL: revision}


def label_keys(draft: Draft) -> set[str]:
    """Selector keys Ramp may set on a Service: matchLabels', the revision's, and the
    label keys of every revision's template it knows, or of its live children's pods (a
    revision whose history was pruned: make fuzz-for, seed 217938708, a key added to the
    selector and taken out again kept on the Services, which then selected none of the
    stable's pods)."""
    keys = {REVISION_LABEL, *(draft.spec.selector.match_labels or {})}
    for template in (draft.obs.template, *(h.template for h in draft.obs.history)):
        keys.update(((template or {}).get("metadata") or {}).get("labels") or {})
    for child in draft.children.values():
        keys.update(dict(child.pod_labels or ()))
    return keys


def unpins(draft: Draft, services: tuple[str, ...]) -> list[ServicePin]:
    """Remove the revision key Ramp added to each of ``services`` (a key its pods alone
    carry): what Ramp pinned serves the app's other pods again."""
    return [
        ServicePin(name, {REVISION_LABEL: None}, "")
        for name in dict.fromkeys(n for n in services if n)
        if REVISION_LABEL in (draft.obs.services.get(name) or {})
    ]
