"""Site URLs and purposes: normalised or refused with a clear message, never anything else."""

from __future__ import annotations

import secrets
import timeit
import unicodedata
import urllib.parse

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sgconnect.errors import InvalidPurposeError, InvalidSiteError, SgConnectError
from sgconnect.sites import MAX_PURPOSE_LENGTH, normalize_site, validate_purpose

# -- normalize_site: accepted -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mystudio.shotgrid.autodesk.com", "https://mystudio.shotgrid.autodesk.com"),
        ("https://mystudio.shotgrid.autodesk.com", "https://mystudio.shotgrid.autodesk.com"),
        ("https://mystudio.shotgrid.autodesk.com/", "https://mystudio.shotgrid.autodesk.com"),
        ("HTTPS://MyStudio.ShotGrid.Autodesk.COM", "https://mystudio.shotgrid.autodesk.com"),
        ("  https://mystudio.shotgunstudio.com \n", "https://mystudio.shotgunstudio.com"),
        ("https://mystudio.shotgunstudio.com/page/123", "https://mystudio.shotgunstudio.com"),
        ("https://mystudio.shotgunstudio.com/detail/Shot/1", "https://mystudio.shotgunstudio.com"),
        ("https://site.example.com/page/1#Shot_12", "https://site.example.com"),
        ("https://site.example.com/page/1?x=1", "https://site.example.com"),
        ("https://site.example.com:443", "https://site.example.com"),
        ("http://site.example.com:80/", "http://site.example.com"),
        ("http://site.example.com:443", "http://site.example.com:443"),
        ("https://site.example.com:8443", "https://site.example.com:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("localhost:8000", "https://localhost:8000"),
        ("http://LOCALHOST:08000/", "http://localhost:8000"),
        ("//site.example.com", "https://site.example.com"),
        ("https://site.example.com.", "https://site.example.com"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("https://münchen.example", "https://xn--mnchen-3ya.example"),
        ("https://MÜNCHEN.example/page/3", "https://xn--mnchen-3ya.example"),
        ("スタジオ.example", "https://xn--kck1acy.example"),
    ],
)
def test_normalize_site_accepts(url, expected):
    assert normalize_site(url) == expected
    assert normalize_site(expected) == expected


# -- normalize_site: refused --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("https://", "host is empty"),
        ("javascript:alert(1)", "scheme 'javascript' is not supported"),
        ("JavaScript://site.example.com", "scheme 'javascript' is not supported"),
        ("file:///etc/passwd", "scheme 'file' is not supported"),
        ("ftp://site.example.com", "scheme 'ftp' is not supported"),
        ("data:text/html,<script>alert(1)</script>", "scheme 'data' is not supported"),
        ("https://my studio.example.com", "space"),
        ("https://site.example.com/a\nb", "control character"),
        ("https://site\r.example.com", "control character"),
        ("https://site.example.com\x00", "control character"),
        ("https://site.\u200bexample.com", "control character"),
        ("https://site.example.com:0", "port"),
        ("https://site.example.com:65536", "port"),
        ("https://site.example.com:http", "port"),
        ("https://site.example.com:-1", "port"),
        ("https://a..example.com", "not a valid domain name"),
        ("https://-bad.example.com", "not a valid domain name"),
        ("https://bad%2e.example.com", "not a valid domain name"),
        ("https://" + "a" * 64 + ".example.com", "not a valid domain name"),
        ("https://[::1", "IPv6"),
        ("https://[not-ipv6]", "IPv6"),
        ("https://site.example.com/?session_token=abc", "carries a secret"),
        ("https://site.example.com/#access_token=abc", "carries a secret"),
        ("https://site.example.com/?password=abc", "carries a secret"),
    ],
)
def test_normalize_site_refuses(url, words):
    with pytest.raises(InvalidSiteError) as caught:
        normalize_site(url)
    message = str(caught.value)
    assert words in message
    assert "https://mystudio.shotgrid.autodesk.com" in message  # says what a valid site is


@pytest.mark.parametrize(
    "template",
    [
        "https://{user}:{password}@site.example.com",
        "http://{user}:{password}@site.example.com:8080/page/1",
        "{user}:{password}@site.example.com",
        "https://{password}@site.example.com",
        "https://{user}:{password}@münchen.example",
    ],
)
def test_credentials_in_url_are_refused_without_echoing_them(template):
    user, password = secrets.token_hex(4), secrets.token_urlsafe(12)
    with pytest.raises(InvalidSiteError) as caught:
        normalize_site(template.format(user=user, password=password))
    message = str(caught.value)
    assert "credentials in the URL are refused" in message
    assert "sgconnect login" in message
    assert password not in message
    assert password not in repr(caught.value)
    assert caught.value.site is None


def test_secret_in_query_is_not_echoed():
    token = secrets.token_urlsafe(16)
    with pytest.raises(InvalidSiteError) as caught:
        normalize_site(f"https://site.example.com/page/1?session_token={token}")
    assert token not in str(caught.value)


def test_refusals_are_sgconnect_and_value_errors():
    with pytest.raises(SgConnectError):
        normalize_site("file:///x")
    with pytest.raises(ValueError):
        normalize_site("file:///x")


@pytest.mark.parametrize("value", [None, 42, b"https://site.example.com", ["https://x.y"]])
def test_normalize_site_refuses_non_str(value):
    with pytest.raises(InvalidSiteError, match="expected a str"):
        normalize_site(value)


# -- normalize_site: properties -----------------------------------------------------------------

_url_alphabet = st.sampled_from(
    list("abcXYZ019-_.:/@?#[]%\\ \t\n\r\x00\x7f\x85\u2028\u200bé\u00dfü日\uff0e\u3002İ")
)
_url_like = st.builds(
    lambda scheme, body: scheme + body,
    st.sampled_from(
        ["", "http://", "https://", "HTTPS://", "//", "javascript:", "file://", "ftp:"]
    ),
    st.text(_url_alphabet, max_size=40),
)


def _check_normalized(result: str) -> None:
    parsed = urllib.parse.urlsplit(result)
    assert parsed.scheme in ("http", "https")
    assert parsed.hostname
    assert parsed.netloc == parsed.netloc.lower()
    assert parsed.netloc.isascii() and parsed.netloc.isprintable()
    assert " " not in parsed.netloc
    assert parsed.username is None and parsed.password is None
    assert (parsed.path, parsed.query, parsed.fragment) == ("", "", "")
    assert result == f"{parsed.scheme}://{parsed.netloc}"
    if parsed.port is not None:
        assert 0 < parsed.port < 65536
        assert parsed.port != {"https": 443, "http": 80}[parsed.scheme]


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), _url_like))
@example("https://Ex\u0130ample.com")
@example("https://\uff21.example")
@example("https://a\u3002b")
@example("http://x:")
def test_normalize_site_property(text):
    try:
        result = normalize_site(text)
    except InvalidSiteError as error:
        assert str(error).startswith("Invalid ShotGrid site: ")
        return
    _check_normalized(result)
    assert normalize_site(result) == result  # idempotent


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["", "https://", "http://", "HTTP://"]),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z0-9]{1,8}){0,3}", fullmatch=True),
    st.one_of(st.none(), st.integers(min_value=1, max_value=65535)),
    st.sampled_from(["", "/", "/page/123", "/detail/Shot/1", "/page/1#Shot_1", "?x=1"]),
)
def test_valid_sites_are_accepted(scheme, host, port, tail):
    url = scheme + host.upper() + (f":{port}" if port else "") + tail
    result = normalize_site(url)
    _check_normalized(result)
    assert urllib.parse.urlsplit(result).hostname == host


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=20), st.sampled_from(["\n", "\r", "\x00", "\x1b", "\u2028"]))
def test_control_characters_inside_a_url_are_refused(text, control):
    with pytest.raises(InvalidSiteError):
        normalize_site(f"https://site.example.com/{text}{control}x")


# -- validate_purpose ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "expected"),
    [
        ("maya publish", "maya publish"),
        ("farm:render-submit", "farm:render-submit"),
        ("  nuke  ", "nuke"),
        ("publier l'étape", "publier l'étape"),
        ("x" * MAX_PURPOSE_LENGTH, "x" * MAX_PURPOSE_LENGTH),
        ("  " + "x" * MAX_PURPOSE_LENGTH + "  ", "x" * MAX_PURPOSE_LENGTH),
    ],
)
def test_validate_purpose_accepts(purpose, expected):
    assert validate_purpose(purpose) == expected
    assert validate_purpose(purpose) == expected  # from the cache


@pytest.mark.parametrize(
    ("purpose", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * (MAX_PURPOSE_LENGTH + 1), "limit is 200"),
        ("maya\npublish", "control character"),
        ("maya publish\n", "control character"),
        ("fake\r\n2026-01-01 INFO sgconnect audit ok", "control character"),
        ("tab\there", "control character"),
        ("del\x7f", "control character"),
        ("c1\x85", "control character"),
        ("ls\u2028", "control character"),
        ("ps\u2029x", "control character"),
        ("zw\u200bj", "control character"),
        ("bidi\u202e", "control character"),
        ("nul\x00", "control character"),
        (None, "expected a str"),
        (b"maya", "expected a str"),
        (3, "expected a str"),
    ],
)
def test_validate_purpose_refuses(purpose, words):
    with pytest.raises(InvalidPurposeError) as caught:
        validate_purpose(purpose)
    message = str(caught.value)
    assert words in message
    assert "maya publish" in message  # says what a valid purpose looks like
    assert "\n" not in message and "\r" not in message


def test_refused_purpose_is_echoed_only_truncated():
    purpose = "a" * 150 + "\n" + "b" * 150
    with pytest.raises(InvalidPurposeError) as caught:
        validate_purpose(purpose)
    assert "a" * 61 not in str(caught.value)
    assert "bbb" not in str(caught.value)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c).startswith("C") or c in "\u2028\u2029" for c in text)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.text(st.characters(max_codepoint=0x3000), max_size=250)))
def test_validate_purpose_property(text):
    try:
        result = validate_purpose(text)
    except InvalidPurposeError:
        assert _has_control(text) or not text.strip() or len(text.strip()) > MAX_PURPOSE_LENGTH
        return
    assert not _has_control(text)
    assert result == text.strip()
    assert 0 < len(result) <= MAX_PURPOSE_LENGTH
    assert validate_purpose(result) == result


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=50), st.characters(categories=["Cc", "Cf", "Zl", "Zp"]), st.text(max_size=50)
)
def test_any_control_character_is_refused(before, control, after):
    with pytest.raises(InvalidPurposeError):
        validate_purpose(before + control + after)


def test_validate_purpose_is_fast_when_repeated():
    validate_purpose("maya publish")
    per_call = min(timeit.repeat(lambda: validate_purpose("maya publish"), number=10000, repeat=5))
    assert per_call / 10000 < 2e-6
