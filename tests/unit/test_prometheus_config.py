"""Provider configuration (allow-list, token) and response parsing, without a network."""

from __future__ import annotations

import base64
import math
from typing import Any

import pytest

from ramp.analysis.prometheus import (
    ALLOW_ENV,
    ErrorKind,
    ProviderConfig,
    ProviderError,
    normalize_address,
    parse_response,
    parse_secret_ref,
    token_from_secret_data,
)


@pytest.mark.parametrize(
    ("address", "normal"),
    [
        ("http://prom:9090", "http://prom:9090"),
        ("HTTP://Prom.Monitoring:9090/", "http://prom.monitoring:9090"),
        ("http://prom", "http://prom:80"),
        ("https://prom/", "https://prom:443"),
        ("https://prom:8443/sub/path/", "https://prom:8443/sub/path"),
        ("http://[::1]:9090", "http://[::1]:9090"),
    ],
    ids=["plain", "case-slash", "default-http-port", "default-https-port", "path", "ipv6"],
)
def test_normalize_address(address: str, normal: str) -> None:
    assert normalize_address(address) == normal


@pytest.mark.parametrize(
    ("address", "word"),
    [
        ("ftp://prom", "http"),
        ("prom:9090", "http"),
        ("http://user:pw@prom:9090", "credentials"),
        ("http://prom:9090/?q=1", "query"),
        ("http://prom:9090/#x", "fragment"),
        ("http://:9090", "host"),
        ("http://prom:99999", "port"),
    ],
    ids=["scheme", "no-scheme", "credentials", "query", "fragment", "no-host", "bad-port"],
)
def test_normalize_address_refuses(address: str, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        normalize_address(address)


def test_from_env_and_args_merges_flags_and_env() -> None:
    config = ProviderConfig.from_env_and_args(
        ["http://a:9090", "http://b:9090/"],
        environ={ALLOW_ENV: " http://B:9090 , ,https://c "},
        token="t0k",
        ca_file="/etc/ca.pem",
    )
    assert config.allowed_addresses == ("http://a:9090", "http://b:9090/", "https://c")
    assert config.token == "t0k" and config.ca_file == "/etc/ca.pem"


def test_from_env_and_args_names_a_bad_entry() -> None:
    with pytest.raises(ValueError, match="allow-list entry"):
        ProviderConfig.from_env_and_args([], environ={ALLOW_ENV: "http://ok:1,ftp://bad"})


def test_empty_token_means_no_token() -> None:
    assert ProviderConfig.from_env_and_args([], environ={}, token="").token is None
    assert ProviderConfig().with_token("").token is None


@pytest.mark.parametrize(
    ("allowed", "address", "refused", "words"),
    [
        (("http://prom:9090",), "http://prom:9090", False, []),
        (("http://prom:9090",), "http://PROM:9090/", False, []),
        (("http://prom",), "http://prom:80", False, []),
        (
            ("http://prom:9090",),
            "http://evil:9090",
            True,
            ["http://evil:9090", "not available"],
        ),
        (("http://prom:9090",), "https://prom:9090", True, ["not available"]),
        (("http://prom:9090",), "http://prom:9090/other", True, ["no request was sent"]),
        ((), "http://prom:9090", True, ["not available", "--prometheus-allow"]),
        (("http://prom:9090",), "http://user:pw@prom:9090", True, ["credentials"]),
    ],
    ids=[
        "exact",
        "normalized",
        "default-port",
        "other-host",
        "other-scheme",
        "other-path",
        "empty-list",
        "credentials",
    ],
)
def test_refusal(allowed: tuple[str, ...], address: str, refused: bool, words: list[str]) -> None:
    reason = ProviderConfig(allowed_addresses=allowed).refusal(address)
    assert (reason is not None) == refused
    # The refusal never shows a tenant what is configured (issue 20: the allow-list).
    assert reason is None or not any(a in reason for a in allowed if a not in address)
    for word in words:
        assert reason is not None and word in reason


def test_token_is_never_in_repr_and_is_redacted() -> None:
    config = ProviderConfig(allowed_addresses=("http://p:1",), token="sup3r-secret")
    assert "sup3r-secret" not in repr(config) and "sup3r-secret" not in str(config)
    assert config.redact("header Bearer sup3r-secret echoed") == "header Bearer <redacted> echoed"
    assert ProviderConfig().redact("nothing to hide") == "nothing to hide"


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [("monitoring/prom-token", ("monitoring", "prom-token"))],
)
def test_parse_secret_ref(ref: str, parsed: tuple[str, str]) -> None:
    assert parse_secret_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["prom-token", "/name", "ns/", "a/b/c", ""])
def test_parse_secret_ref_refuses(ref: str) -> None:
    with pytest.raises(ValueError, match="NAMESPACE/NAME"):
        parse_secret_ref(ref)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_token_from_secret_data() -> None:
    assert token_from_secret_data({"token": _b64("abc\n")}) == "abc"
    assert token_from_secret_data({"bearer": _b64("xyz")}, key="bearer") == "xyz"


@pytest.mark.parametrize(
    ("data", "word"),
    [
        (None, "no 'token' key"),
        ({"other": _b64("x")}, "no 'token' key"),
        ({"token": "not base64!"}, "not base64"),
        ({"token": _b64("  ")}, "empty"),
    ],
    ids=["no-data", "no-key", "not-base64", "blank"],
)
def test_token_from_secret_data_refuses_without_showing_the_value(
    data: dict[str, str] | None, word: str
) -> None:
    with pytest.raises(ValueError, match=word) as caught:
        token_from_secret_data(data)
    if data:
        for value in data.values():
            assert value not in str(caught.value)


# --- response parsing ------------------------------------------------------------------


def _ok(result_type: str, result: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": result_type, "result": result}}


def _sample(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1714564800.0, value]}


@pytest.mark.parametrize(
    ("body", "result", "text"),
    [
        (_ok("scalar", [1714564800.0, "0.5"]), 0.5, "0.5"),
        (_ok("vector", [_sample("0.0123", rev="a")]), 0.0123, "0.0123"),
        (_ok("vector", [_sample("1"), _sample("2")]), [1.0, 2.0], "[1, 2]"),
        (_ok("vector", []), [], None),
        (_ok("vector", [_sample("NaN")]), math.nan, "NaN"),
        (_ok("vector", [_sample("+Inf")]), math.inf, "+Inf"),
    ],
    ids=["scalar", "one-sample", "two-samples", "empty", "nan", "inf"],
)
def test_parse_response(body: dict[str, Any], result: Any, text: str | None) -> None:
    parsed = parse_response(body)
    assert parsed.text == text
    if isinstance(result, float) and math.isnan(result):
        assert isinstance(parsed.result, float) and math.isnan(parsed.result)
    else:
        assert parsed.result == result


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"status": "error"}, ErrorKind.MALFORMED),
        ([], ErrorKind.MALFORMED),
        ({"status": "success"}, ErrorKind.MALFORMED),
        (_ok("scalar", "0.5"), ErrorKind.MALFORMED),
        (_ok("vector", [{"metric": {}}]), ErrorKind.MALFORMED),
        (_ok("vector", [_sample("abc")]), ErrorKind.MALFORMED),
        (_ok("vector", [{"metric": [], "value": [0, "1"]}]), ErrorKind.MALFORMED),
        (_ok("matrix", []), ErrorKind.UNSUPPORTED),
        (_ok("string", [0, "x"]), ErrorKind.UNSUPPORTED),
    ],
    ids=[
        "error-status",
        "not-object",
        "no-data",
        "scalar-not-pair",
        "sample-no-value",
        "value-not-number",
        "labels-not-object",
        "matrix",
        "string",
    ],
)
def test_parse_response_refuses(body: Any, kind: ErrorKind) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_response(body)
    assert caught.value.kind is kind


@pytest.mark.parametrize(
    "token", ["two words", "line\nbreak", "tab\t", ""], ids=["space", "newline", "tab", "empty"]
)
def test_malformed_token_is_refused_without_showing_it(token: str) -> None:
    with pytest.raises(ValueError, match="token is empty or contains whitespace") as caught:
        ProviderConfig(token=token)
    assert not token or token not in str(caught.value)


def test_token_surrounding_whitespace_is_stripped() -> None:
    assert ProviderConfig.from_env_and_args([], environ={}, token=" tok\n").token == "tok"
    assert ProviderConfig().with_token("tok\n").token == "tok"
