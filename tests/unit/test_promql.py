"""Query rendering: placeholders, escaping per literal, injection (acceptance 7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ramp.analysis.promql import (
    QueryContext,
    QueryTemplateError,
    escape_string_literal,
    placeholders,
    render,
)

CTX = QueryContext(
    rollout="checkout",
    namespace="shop",
    canary_revision="7c9f8d6b5",
    stable_revision="5d4c3b2a1",
)


def ctx(**args: str) -> QueryContext:
    """The test context with these arguments."""
    return QueryContext(
        rollout=CTX.rollout,
        namespace=CTX.namespace,
        canary_revision=CTX.canary_revision,
        stable_revision=CTX.stable_revision,
        args=args,
    )


# (id, template, args, rendered)
RENDER = [
    (
        "builtins",
        'x{namespace="{{namespace}}",rollout="{{rollout}}",c="{{canaryRevision}}",s="{{stableRevision}}"}',
        {},
        'x{namespace="shop",rollout="checkout",c="7c9f8d6b5",s="5d4c3b2a1"}',
    ),
    ("spaces-in-braces", 'x{a="{{ args.svc }}"}', {"svc": "web"}, 'x{a="web"}'),
    (
        "injection-double",
        'x{a="{{args.v}}"}',
        {"v": 'x"} or vector(0) #'},
        'x{a="x\\"} or vector(0) #"}',
    ),
    ("single-quote-in-double", 'x{a="{{args.v}}"}', {"v": "it's"}, 'x{a="it\'s"}'),
    (
        "injection-single",
        "x{a='{{args.v}}'}",
        {"v": "x'} or vector(0) #"},
        "x{a='x\\'} or vector(0) #'}",
    ),
    ("double-quote-in-single", "x{a='{{args.v}}'}", {"v": 'a"b'}, "x{a='a\"b'}"),
    ("backslash", 'x{a="{{args.v}}"}', {"v": "a\\b"}, 'x{a="a\\\\b"}'),
    ("trailing-backslash", 'x{a="{{args.v}}"}', {"v": "a\\"}, 'x{a="a\\\\"}'),
    ("newline", 'x{a="{{args.v}}"}', {"v": "a\nb"}, 'x{a="a\\nb"}'),
    ("tab-cr", 'x{a="{{args.v}}"}', {"v": "\t\r"}, 'x{a="\\t\\r"}'),
    ("control-chars", 'x{a="{{args.v}}"}', {"v": "\x01\x7f"}, 'x{a="\\x01\\x7f"}'),
    ("backtick-in-double", 'x{a="{{args.v}}"}', {"v": "`"}, 'x{a="`"}'),
    ("unicode-kept", 'x{a="{{args.v}}"}', {"v": "é✓"}, 'x{a="é✓"}'),
    ("regex-value", 'x{a=~"{{args.v}}"}', {"v": "5..|4.."}, 'x{a=~"5..|4.."}'),
    ("raw-string", "x{a=`{{args.v}}`}", {"v": 'a"b\\c'}, 'x{a=`a"b\\c`}'),
    ("not-re-expanded", 'x{a="{{args.v}}"}', {"v": "{{rollout}}"}, 'x{a="{{rollout}}"}'),
    (
        "escaped-quote-in-template",
        'x{a="q\\"{{args.v}}"}',
        {"v": '"'},
        'x{a="q\\"\\""}',
    ),
    (
        "comment-newline-escaped",
        "up # for {{args.v}}\n",
        {"v": "a\nvector(1)"},
        "up # for a\\nvector(1)\n",
    ),
    ("bare-duration", "rate(x[{{args.w}}])", {"w": "5m"}, "rate(x[5m])"),
    ("bare-composite-duration", "rate(x[{{args.w}}])", {"w": "1h30m"}, "rate(x[1h30m])"),
    (
        "bare-number",
        "histogram_quantile({{args.q}}, x)",
        {"q": "0.99"},
        "histogram_quantile(0.99, x)",
    ),
    ("bare-name", "sum({{args.m}})", {"m": "http_requests_total"}, "sum(http_requests_total)"),
    ("no-placeholders", 'sum(rate(x{a="{"}[5m]))', {}, 'sum(rate(x{a="{"}[5m]))'),
]


@pytest.mark.parametrize(
    ("template", "args", "rendered"),
    [case[1:] for case in RENDER],
    ids=[case[0] for case in RENDER],
)
def test_render(template: str, args: dict[str, str], rendered: str) -> None:
    assert render(template, ctx(**args)) == rendered


# (id, template, args, words of the error)
REFUSED = [
    ("unknown-arg", 'x{a="{{args.nope}}"}', {"svc": "a"}, ["{{args.nope}}", "'nope'", "svc"]),
    ("unknown-builtin", 'x{a="{{canary}}"}', {}, ["{{canary}}", "canaryRevision"]),
    ("empty-placeholder", 'x{a="{{ }}"}', {}, ["unknown placeholder"]),
    ("revision-outside-compare", 'x{a="{{revision}}"}', {}, ["{{revision}}", "compare"]),
    ("bare-injection", "rate(x[{{args.w}}])", {"w": "5m]) or vector(1"}, ["{{args.w}}", "quotes"]),
    ("bare-keyword", "x {{args.op}} y", {"op": "or"}, ["{{args.op}}"]),
    ("bare-keyword-case", "x {{args.op}} y", {"op": "UNLESS"}, ["{{args.op}}"]),
    ("bare-empty", "x[{{args.w}}]", {"w": ""}, ["{{args.w}}"]),
    ("bare-dash", "x - {{args.v}}", {"v": "my-rollout"}, ["{{args.v}}"]),
    ("backtick-in-raw", "x{a=`{{args.v}}`}", {"v": "a` or vector(0) #"}, ["backtick"]),
    ("unterminated-double", 'x{a="{{args.v}}}', {"v": "a"}, ["unterminated"]),
    ("unterminated-raw", "x{a=`b}", {}, ["unterminated backtick"]),
    ("newline-in-double", 'x{a="b\n"}', {}, ["unterminated"]),
]


@pytest.mark.parametrize(
    ("template", "args", "words"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_refused(template: str, args: dict[str, str], words: list[str]) -> None:
    with pytest.raises(QueryTemplateError) as caught:
        render(template, ctx(**args))
    for word in words:
        assert word in str(caught.value)


def test_missing_revision_is_named() -> None:
    no_stable = QueryContext(rollout="r", namespace="n", canary_revision="c")
    with pytest.raises(QueryTemplateError, match="stableRevision"):
        render('x{a="{{stableRevision}}"}', no_stable)


def test_compare_revision() -> None:
    assert render('x{r="{{revision}}"}', CTX.with_revision("abc")) == 'x{r="abc"}'
    assert CTX.with_revision("abc").canary_revision == CTX.canary_revision


def test_placeholders() -> None:
    template = 'x{a="{{args.a}}",b="{{ rollout }}"} # {{namespace}}'
    assert placeholders(template) == ["args.a", "rollout", "namespace"]


def test_escape_string_literal_refuses_other_quotes_and_surrogates() -> None:
    with pytest.raises(ValueError):
        escape_string_literal("a", "`")
    with pytest.raises(QueryTemplateError, match="surrogate"):
        escape_string_literal("\ud800")


# --- property: a value always stays one string literal with exactly its content ---------

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _read_literal(text: str, start: int) -> tuple[str, int]:
    """Decode the PromQL string literal opening at ``text[start]`` as PromQL's lexer does
    (only the opening quote, the letters above, ``\\\\`` and ``\\xNN`` after a backslash);
    returns its value and the index after the closing quote."""
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while True:
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        assert ch != "\n", "raw newline inside a string literal"
        if ch == "\\":
            nxt = text[i + 1]
            if nxt == quote:
                out.append(quote)
                i += 2
            elif nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
            else:
                assert nxt == "x", f"escape \\{nxt} is not PromQL"
                out.append(chr(int(text[i + 2 : i + 4], 16)))
                i += 4
        else:
            out.append(ch)
            i += 1


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@pytest.mark.parametrize("quote", ['"', "'"], ids=["double", "single"])
@given(value=_TEXT)
def test_any_value_stays_inside_its_literal(quote: str, value: str) -> None:
    prefix, suffix = "up{a=", "} or up"
    rendered = render(f"{prefix}{quote}{{{{args.v}}}}{quote}{suffix}", ctx(v=value))
    assert rendered.startswith(prefix + quote)
    decoded, end = _read_literal(rendered, len(prefix))
    assert decoded == value
    assert rendered[end:] == suffix
