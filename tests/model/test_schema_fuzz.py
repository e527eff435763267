"""Schema fuzzing (issue 19): specs generated from the CRDs' schema, kept when the schema
and its CEL rules accept them, driven through the real ``plan()`` in every phase.

In CI: 5,000 accepted specs (derandomized, each through the first rollout, a new template
and one of :data:`model.schema_fuzz.SHORT_SCRIPTS`); ``make fuzz`` (``RAMP_FUZZ=1``) drives
``RAMP_SCHEMA_SPECS`` (default 50,000) at random, each through the whole script. Zero
exceptions out of ``plan()``; every status validates; every derived name and label is
valid. The named examples below are the cases that broke f61a406 (classes 5 and 6).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import pytest

from model.schema_fuzz import (
    SCRIPT,
    SHORT_SCRIPTS,
    Broken,
    Drive,
    accepted,
    drive,
    specs,
)
from ramp.core.names import (
    MAX_CHILD_NAME,
    child_name,
    event_name,
    label_value_problem,
    name_problem,
    rollout_label,
)

FUZZ = bool(os.environ.get("RAMP_FUZZ"))
SPECS = int(os.environ.get("RAMP_SCHEMA_SPECS", "50000" if FUZZ else "5000"))


@pytest.mark.timeout(0 if FUZZ else 1200)  # 5,000 specs: minutes when loaded; make fuzz: no limit
def test_plan_is_total_on_every_spec_the_api_server_accepts() -> None:
    seed = random.randrange(2**32) if FUZZ else 19
    rng = random.Random(seed)
    started = time.monotonic()
    driven = refused = plans = unparsable = 0
    names: set[int] = set()
    broken: list[str] = []
    cases = specs(rng)
    while driven < SPECS:
        name, spec, templates, why = next(cases)
        if why:
            refused += 1
            continue
        script = SCRIPT if FUZZ else SHORT_SCRIPTS[driven % len(SHORT_SCRIPTS)]
        try:
            d = drive(rng, name, spec, templates, script)
        except Broken as exc:
            broken.append(f"{exc}\n  name={name!r}\n  spec={spec!r}\n  templates={templates!r}")
            if len(broken) >= 3:
                break
            continue
        driven += 1
        plans += d.plans
        unparsable += d.unparsable
        names.add(len(name))
    seconds = time.monotonic() - started
    print(
        f"schema fuzz (seed {seed}): {driven} specs driven ({refused} refused by the schema "
        f"or its rules), {plans} plans, {unparsable} unparsable, {seconds:.1f} s"
    )
    assert not broken, "\n\n".join(broken)
    assert {253, 64, 47} <= names  # the limits were reached


def _canary(**canary: Any) -> dict[str, Any]:
    return {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        },
        "strategy": {"canary": canary},
    }


def _metric(**fields: Any) -> dict[str, Any]:
    return {
        "name": "m",
        "prometheus": {"address": "http://p:9090", "query": "up"},
        "successCondition": "result < 1.0",
        **fields,
    }


HUGE = "99999999999h"
EXAMPLES = [
    pytest.param(
        "web",
        _canary(steps=[{"setWeight": 50}, {"pause": {"duration": HUGE}}]),
        "steps[1].pause.duration",
        id="class6-pause-99999999999h",
    ),
    pytest.param(
        "web",
        _canary(steps=[{"analysis": {"metrics": [_metric(initialDelay=HUGE)]}}]),
        "initialDelay",
        id="class6-analysis-initialDelay-99999999999h",
    ),
    pytest.param(
        "web",
        _canary(analysis={"metrics": [_metric(interval=HUGE)]}),
        "interval",
        id="class6-background-interval-99999999999h",
    ),
    pytest.param("a" * 64, _canary(steps=[{"setWeight": 50}]), None, id="class5-name-64"),
    pytest.param("a" * 253, _canary(steps=[{"pause": {}}]), None, id="class5-name-253"),
    pytest.param(
        "a." * 125 + "abc", _canary(steps=[{"setWeight": 10}]), None, id="class5-dotted-253"
    ),
]


@pytest.mark.parametrize(("name", "spec", "field"), EXAMPLES)
def test_named_examples_plan_or_name_the_field(
    name: str, spec: dict[str, Any], field: str | None
) -> None:
    """Each plans through every phase; a spec over the duration bound (as stored before
    the bound came) becomes InvalidSpec naming the field, and the API server refuses it."""
    rng = random.Random(0)
    d = drive(rng, name, spec, {}, SCRIPT)
    assert d.plans + d.unparsable >= len(SCRIPT)
    if field is not None:
        refusals = accepted(spec, "rollouts")  # the API server refuses it now
        assert any(bound in e for e in refusals for bound in ("8760h", "24h")), refusals
        invalid = _invalid_spec(d)
        assert invalid is not None and field in invalid, invalid
    else:
        assert d.status is not None and d.status["phase"] in ("Healthy", "Progressing", "Paused")
        assert name_problem(child_name(name, "0123456789"), MAX_CHILD_NAME) is None
        assert label_value_problem(rollout_label(name)) is None


def _invalid_spec(d: Drive) -> str | None:
    """The InvalidSpec condition's message (the planner's or, for an object the models
    cannot read, the shell's ``validation_problem``)."""
    if d.unparsable:
        return d.last_problem
    for cond in (d.status or {}).get("conditions") or []:
        if cond["type"] == "InvalidSpec" and cond["status"] == "True":
            return str(cond["message"])
    return None


@pytest.mark.parametrize("size", [1, 46, 47, 52, 53, 58, 63, 64, 200, 242, 252, 253])
def test_derived_names_fit_for_every_name_the_api_accepts(size: int) -> None:
    for name in ("a" * size, ("ab." * 90)[: size - 1].rstrip(".-") + "z"):
        label = rollout_label(name)
        assert label_value_problem(label) is None, label
        assert label == name or len(name) > 63
        child = child_name(name, "5fd2c6b0bc")
        assert name_problem(child, MAX_CHILD_NAME) is None, child
        assert name_problem(event_name(name, "0123456789ab")) is None
    # Distinct names never share a label value or a child name (the hash of the whole).
    a, b = "x" * 252 + "a", "x" * 252 + "b"
    assert rollout_label(a) != rollout_label(b)
    assert child_name(a, "r") != child_name(b, "r")
