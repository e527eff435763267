"""Namespace enforcement of PromQL (issue 20, item 1): a real parser, every selector."""

from __future__ import annotations

import promql_parser as pp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ramp.analysis.tenancy import TenancyError, check, enforce_namespace, unparse

NS = "team-a"

SCOPED = [
    (
        'sum(rate(http_requests_total{code=~"5.."}[5m]))',
        'sum(rate(http_requests_total{code=~"5..",namespace="team-a"}[5m]))',
    ),
    ("up", 'up{namespace="team-a"}'),
    ('{__name__=~"http_.*"}', '{__name__=~"http_.*",namespace="team-a"}'),
    ("x[5m] offset 1m", 'x{namespace="team-a"}[5m] offset 1m'),
    ("max_over_time(x[1h:1m])", 'max_over_time(x{namespace="team-a"}[1h:1m])'),
    ("rate(x[5m:] @ end())", 'rate(x{namespace="team-a"}[5m:] @ end())'),
    (
        "a / on(b) group_left(c) d",
        'a{namespace="team-a"} / on (b) group_left (c) d{namespace="team-a"}',
    ),
    ("a and ignoring(b) d", 'a{namespace="team-a"} and ignoring (b) d{namespace="team-a"}'),
    ("a > bool 1", 'a{namespace="team-a"} > bool 1'),
    ('up{a="1" or b="2"}', 'up{a="1",namespace="team-a" or b="2",namespace="team-a"}'),
    ('x{namespace="team-a"}', 'x{namespace="team-a"}'),
    ('x{namespace=~"team-.*"}', 'x{namespace=~"team-.*",namespace="team-a"}'),
    ('count_values by (a) ("v", x)', 'count_values by (a)("v", x{namespace="team-a"})'),
    (
        'label_replace(up, "namespace", "team-b", "", "")',
        'label_replace(up{namespace="team-a"}, "namespace", "team-b", "", "")',
    ),
    ("vector(1)", "vector(1)"),
    ('x{a="q\\"} or vector(1) #"}', 'x{a="q\\"} or vector(1) #",namespace="team-a"}'),
]


@pytest.mark.parametrize(("query", "scoped"), SCOPED, ids=[q for q, _ in SCOPED])
def test_every_selector_gets_the_namespace(query: str, scoped: str) -> None:
    assert enforce_namespace(query, NS) == scoped
    check(scoped, NS)  # and it parses again with the matcher in every selector


REFUSED = [
    ('sum(rate(http_requests_total{namespace="team-b"}[5m]))', 'namespace="team-b"'),
    ('absent(up{namespace="team-b"})', 'namespace="team-b"'),
    ('x{namespace!="team-a"}', 'namespace!="team-a"'),
    ('x{namespace=~"team-b|team-c"}', 'namespace=~"team-b|team-c"'),
    ('x{namespace!~"team-a"}', 'namespace!~"team-a"'),
    ('a * on() group_left b{namespace="kube-system"}', 'namespace="kube-system"'),
    ('max_over_time(x{namespace="team-b"}[1h:1m])', 'namespace="team-b"'),
    ("info(up)", "info()"),
    ("sum(rate(x[5m]", "not valid PromQL"),
    ("x" * 9000, "longer than"),
]


@pytest.mark.parametrize(("query", "words"), REFUSED, ids=[q[:40] for q, _ in REFUSED])
def test_another_namespace_is_refused_with_a_clear_message(query: str, words: str) -> None:
    with pytest.raises(TenancyError) as caught:
        enforce_namespace(query, NS)
    assert words in str(caught.value)
    if "namespace" in words:
        assert "team-a" in str(caught.value)


def test_another_label_can_be_enforced() -> None:
    assert enforce_namespace("up", NS, label="kubernetes_namespace") == (
        'up{kubernetes_namespace="team-a"}'
    )
    with pytest.raises(TenancyError):
        enforce_namespace("up", NS, label="bad label")


def test_check_finds_an_unscoped_selector() -> None:
    with pytest.raises(TenancyError):
        check('a{namespace="team-a"} + b', NS)
    with pytest.raises(TenancyError):
        check('a{namespace="team-b"}', NS)


# Values an attacker would put in a label matcher or string: quotes, backslashes,
# newlines, braces, PromQL syntax, non-ASCII.
_NASTY = st.text(
    alphabet=st.sampled_from([*list("ab\"\\\n\t}{)(#`',=~! or"), "é", "\x00", "\x7f"]),
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_NASTY, other=_NASTY)
def test_strings_round_trip_exactly_and_stay_data(value: str, other: str) -> None:
    literal = '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    literal2 = '"' + other.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    query = f'label_replace(x{{a={literal}}}, "l", {literal2}, "a", "(.*)")'
    try:
        parsed = pp.parse(query)
    except Exception:
        return  # not PromQL in the first place (e.g. a NUL byte)
    scoped = enforce_namespace(query, NS)
    again = pp.parse(scoped)
    assert isinstance(again, pp.Call)
    selector = again.args[0]
    assert isinstance(selector, pp.VectorSelector)
    values = {m.name: m.value for m in selector.matchers.matchers}
    assert values == {"a": value, "namespace": NS}
    assert unparse(parsed) and again.args[2].val == other  # type: ignore[attr-defined]


_SELECTORS = st.sampled_from(["up", "x[5m]", 'y{a="b"}', "z[5m:1m]", '{__name__="w"}'])
_FUNCS = st.sampled_from(["rate({})", "sum by (a) ({})", "abs({})", "({})", "-{}", "{} offset 5m"])


@st.composite
def queries(draw: st.DrawFn, depth: int = 3) -> str:
    if depth == 0 or draw(st.booleans()):
        return draw(_SELECTORS)
    kind = draw(st.sampled_from(["func", "binop"]))
    if kind == "func":
        return draw(_FUNCS).format(draw(queries(depth - 1)))
    op = draw(st.sampled_from(["+", "/", "and", "or", "unless", "> bool", "* on (a)"]))
    return f"{draw(queries(depth - 1))} {op} {draw(queries(depth - 1))}"


@settings(max_examples=300, deadline=None)
@given(query=queries())
def test_generated_queries_are_scoped_or_refused_never_left_open(query: str) -> None:
    try:
        pp.parse(query)
    except Exception:
        return
    try:
        scoped = enforce_namespace(query, NS)
    except TenancyError:
        return  # refused is safe (e.g. a range vector where PromQL wants an instant one)
    check(scoped, NS)
    # The same tree, but for the added matchers: scoping twice changes nothing.
    assert enforce_namespace(scoped, NS) == scoped
