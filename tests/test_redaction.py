"""Redaction at the source: secret values and secret shapes never reach a log handler."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgconnect import redaction
from sgconnect.redaction import (
    REDACTED,
    forget_secret,
    install,
    is_installed,
    redact,
    register_secret,
    uninstall,
)


def _secret() -> str:
    return secrets.token_urlsafe(18)


def _jwt() -> str:
    def segment(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = segment(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = segment(json.dumps({"sub": secrets.token_hex(8), "exp": 1}).encode())
    return f"{header}.{payload}.{segment(secrets.token_bytes(32))}"


@pytest.fixture(autouse=True)
def clean_state():
    """Each test starts with no registered secret and no filter, and leaves both as it found them
    (``import sgconnect`` installed the filter for the rest of the suite)."""
    was_installed = redaction.is_installed()
    uninstall()
    with redaction.isolated_secrets():
        yield
        uninstall()
        if was_installed:
            install()


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record):
        self.records.append(record)
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def captured():
    """Every record of the process, at DEBUG, formatted by an ordinary handler.

    Libraries set their own levels (shotgun_api3 sets WARN on import), so the loggers these tests
    use are put at DEBUG too, whatever ran before.
    """
    root = logging.getLogger()
    handler = _ListHandler()
    # tk-core's LogManager stops "sgtk" records at its own handlers (propagate False).
    saved = {
        name: (logging.getLogger(name).level, logging.getLogger(name).propagate)
        for name in ["", "sgtk", *LOGGERS]
    }
    root.addHandler(handler)
    for name in saved:
        logging.getLogger(name).setLevel(logging.DEBUG)
        logging.getLogger(name).propagate = True
    yield handler
    root.removeHandler(handler)
    for name, (level, propagate) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).propagate = propagate


# -- redact(): shapes ---------------------------------------------------------------------------

KEYS = [
    "password",
    "user_password",
    "session_token",
    "sessionToken",
    "session_id",
    "script_key",
    "api_key",
    "auth_token",
    "access_token",
    "refresh_token",
    "client_secret",
    "_session_id",
    "secret",
    "key",
]

SHAPES = {
    "json": '{"user_login": "bob", "KEY": "SECRET", "n": 1}',
    "json-last": '{"user_login": "bob", "KEY": "SECRET"}',
    "json-spaced": '{"user_login": "bob",\n  "KEY" :  "SECRET",\n  "n": 1}',
    "repr": "{'user_login': 'bob', 'KEY': 'SECRET', 'n': 1}",
    "kwargs": "User(login='bob', KEY='SECRET', expired=False)",
    "form": "grant_type=x&KEY=SECRET&scope=sudo_as_login%3Abob",
    "query": "GET /api/v1?KEY=SECRET HTTP/1.1",
    "yaml": "login: bob\nKEY: SECRET\nmethod: default",
    "yaml-quoted": "login: bob\nKEY: 'SECRET'\nmethod: default",
    "bytes-repr": 'Request body is b\'{"method_name": "read", "params": [{"KEY": "SECRET"}]}\'',
    "escaped-json": '{"body": "{\\"KEY\\": \\"SECRET\\", \\"n\\": 1}"}',
}


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_key_values_are_redacted_and_the_rest_kept(shape, key):
    secret = _secret()
    template = SHAPES[shape].replace("KEY", key)
    text = template.replace("SECRET", secret)
    assert redact(text) == template.replace("SECRET", REDACTED)


@pytest.mark.parametrize(
    "template",
    [
        "Authorization: Bearer SECRET",
        "{'Authorization': 'Bearer SECRET', 'Accept': 'application/json'}",
        "Request headers are {'authorization': 'Basic SECRET', 'connection': 'keep-alive'}",
        "sending bearer SECRET to the site",
        "Cookie: _session_id=SECRET; shotgun_current_user_login=bob",
        "{'set-cookie': '_session_id=SECRET; path=/; HttpOnly'}",
        "Session token: SECRET",
        'Response body is b\'{"results": {"session_id": "SECRET"}}\'',
        '{"approved": true, "sessionToken": "SECRET", "userLogin": "bob"}',
        '{"token_type": "Bearer", "access_token": "SECRET", "expires_in": 600}',
        "users:\n- login: bob\n  session_token: SECRET\n  session_metadata: null",
        "grant_type=password&username=bob&password=SECRET",
        "grant_type=client_credentials&client_id=farm&client_secret=SECRET",
    ],
)
def test_other_shapes_are_redacted_and_the_rest_kept(template):
    secret = _secret()
    assert redact(template.replace("SECRET", secret)) == template.replace("SECRET", REDACTED)


def test_jwt_shaped_strings_are_redacted_anywhere():
    token = _jwt()
    assert redact(f"minted {token} for bob (600 s)") == f"minted {REDACTED} for bob (600 s)"
    reply = json.dumps({"token_type": "Bearer", "data": [token], "expires_in": 600})
    assert token not in redact(reply)
    assert '"token_type": "Bearer"' in redact(reply)


@pytest.mark.parametrize("extra", ['"', "'", "\\", "é", " ", "&", "日本"])
def test_passwords_with_special_characters_in_encoded_bodies(extra):
    core = _secret()
    password = core[:8] + extra + core[8:] + extra
    payload = {"method_name": "info", "params": [{"user_login": "bob", "user_password": password}]}
    for ensure_ascii in (True, False):
        body = json.dumps(payload, ensure_ascii=ensure_ascii)
        for text in (body, repr(body), f"Request body is {body.encode('utf-8')!r}"):
            out = redact(text)
            assert core[:8] not in out and core[8:] not in out, out
            assert '"user_login": "bob"' in out and REDACTED in out


@pytest.mark.parametrize(
    "text",
    [
        "Completed rpc call to find",
        "Starting rpc call to info with params []",
        'Response body is b\'{"results": {"version": [8, 50, 0]}}\'',
        '{"token_type": "Bearer", "expires_in": 600}',
        '{"session_token": null, "password": ""}',
        "{'session_token': None}",
        "Bearer authentication is used by the REST API",
        "monkey business, keyboard=1, keys: 3, tokens: 2",
        "sgtk.core.authentication: Loading the session cache from /home/bob/.shotgun",
        "",
    ],
)
def test_ordinary_text_is_unchanged(text):
    assert redact(text) == text


def test_redact_is_idempotent():
    for template in SHAPES.values():
        once = redact(template.replace("KEY", "session_token").replace("SECRET", _secret()))
        assert redact(once) == once


def test_redact_accepts_non_str():
    secret = _secret()
    assert secret not in redact({"session_token": secret})
    assert redact(12) == "12"


_PIECES = st.sampled_from(
    list("ab \n\t\"'\\:=&;,{}[]()") + ["password", "session_token", "key", "Bearer ", "eyJ"]
)
_TEXT = st.lists(st.one_of(_PIECES, st.just(REDACTED), st.text(max_size=3)), max_size=30).map(
    "".join
)


@settings(max_examples=300, deadline=None)
@given(_TEXT, _TEXT)
def test_redact_property(before, after):
    """Never raises, is idempotent, and a registered secret never survives whatever surrounds it."""
    secret = _secret()
    register_secret(secret)
    try:
        for text in (before + secret + after, before + after):
            once = redact(text)
            assert secret not in once
            assert redact(once) == once
    finally:
        forget_secret(secret)


# -- redact(): the registry ---------------------------------------------------------------------


def test_registered_secrets_are_redacted_anywhere():
    secret = _secret()
    text = f"weird third-party line <{secret}> and again:{secret}!"
    assert redact(text) == text
    register_secret(secret)
    assert redact(text) == f"weird third-party line <{REDACTED}> and again:{REDACTED}!"
    forget_secret(secret)
    assert redact(text) == text


@pytest.mark.parametrize("extra", ['"', "'", "\\", "é", " ", "&/+=", "\n"])
def test_registered_secrets_are_redacted_in_their_encoded_forms(extra):
    secret = _secret() + extra + _secret()
    register_secret(secret)
    forms = [
        json.dumps(secret),
        json.dumps(secret, ensure_ascii=False),
        repr(secret),
        repr(secret.encode("utf-8")),
        repr(json.dumps({"x": secret}, ensure_ascii=False).encode("utf-8")),
        urllib.parse.quote_plus(secret),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.urlencode({"opaque": secret}),
    ]
    for form in forms:
        out = redact(f"unknown shape: {form} end")
        assert secret[:24] not in out and secret[-24:] not in out, out
        assert out.startswith("unknown shape: ") and out.endswith(" end")


def test_short_and_empty_values_are_not_registered():
    register_secret("")
    register_secret(None)
    register_secret("abc12")
    assert redact("abc12 is a shot name") == "abc12 is a shot name"
    assert redaction.secret_count() == 0
    forget_secret("never-registered")


def test_register_secret_refuses_non_str():
    with pytest.raises(TypeError):
        register_secret(b"bytes-secret")


def test_registry_is_thread_safe():
    values = [_secret() for _ in range(200)]

    def worker(chunk):
        for value in chunk:
            register_secret(value)
            redact(f"x {value} y")

    threads = [threading.Thread(target=worker, args=(values[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = " ".join(values)
    assert not any(value in redact(text) for value in values)


# -- the log record factory ---------------------------------------------------------------------

LOGGERS = ["shotgun_api3", "sgtk.core.authentication", "sgconnect.x", "tank.x", "some.other.lib"]


@pytest.mark.parametrize("name", LOGGERS)
def test_installed_factory_redacts_messages_and_args(captured, name):
    registered, unregistered = _secret(), _secret()
    register_secret(registered)
    install()
    logger = logging.getLogger(name)
    logger.debug("login with %s", registered)
    logger.info("params %s", {"session_token": unregistered, "login": "bob"})
    logger.warning("%(who)s has %(what)s", {"who": "bob", "what": f"password={unregistered}"})
    assert registered not in captured.text and unregistered not in captured.text
    assert f"{name} DEBUG login with {REDACTED}" in captured.lines
    assert f"{name} INFO params {{'session_token': '{REDACTED}', 'login': 'bob'}}" in captured.lines
    assert f"{name} WARNING bob has password={REDACTED}" in captured.lines
    for record in captured.records:
        assert record.args == ()
        assert registered not in record.msg and unregistered not in record.msg


@pytest.mark.parametrize("name", LOGGERS)
def test_installed_factory_redacts_tracebacks(captured, name):
    secret = _secret()
    install()
    try:
        try:
            raise KeyError(f"session_token={secret}")
        except KeyError as cause:
            raise RuntimeError(f"login failed: {{'password': '{secret}'}}") from cause
    except RuntimeError:
        logging.getLogger(name).exception("the call failed")
    assert secret not in captured.text
    assert "Traceback (most recent call last)" in captured.text
    assert "RuntimeError: login failed: {'password': '[redacted]'}" in captured.text
    assert "session_token=[redacted]" in captured.text  # the chained cause too
    (record,) = captured.records
    assert record.exc_info is None and secret not in record.exc_text


def test_installed_factory_redacts_stack_info(captured):
    secret = _secret()
    register_secret(secret)
    install()
    logging.getLogger("sgconnect.x").debug("where am I", stack_info=True)
    record = logging.getLogRecordFactory()(
        "sgtk.core", logging.DEBUG, __file__, 1, "m", (), None, None, f"Stack: token={secret}"
    )
    assert "Stack (most recent call last)" in captured.text
    assert record.stack_info == f"Stack: token={REDACTED}"


def test_unformattable_args_do_not_leak(captured, capsys):
    secret = _secret()
    install()
    logging.getLogger("sgconnect.x").info("%s and %s", f"password={secret}")
    assert secret not in captured.text
    assert "did not format" in captured.text
    assert secret not in capsys.readouterr().err


def test_realistic_shotgun_api3_debug_lines_are_redacted(captured):
    shotgun_api3 = pytest.importorskip("shotgun_api3")
    password, token = _secret() + "'\"é", _secret()

    class _Response(dict):
        status, reason = 200, "OK"

    class _FakeHttp:
        def request(self, url, method, body, headers):
            name = json.loads(body)["method_name"]
            results = {"version": [8, 50, 0]} if name == "info" else {"session_id": token}
            reply = {"results": results} if name != "info" else results
            return _Response({"content-type": "application/json"}), json.dumps(reply).encode()

    api_logger = logging.getLogger("shotgun_api3")
    level = api_logger.level
    api_logger.setLevel(logging.DEBUG)  # shotgun_api3 sets WARN on import
    try:
        _check_shotgun_api3_lines(shotgun_api3, captured, password, token, _FakeHttp())
    finally:
        api_logger.setLevel(level)


def _check_shotgun_api3_lines(shotgun_api3, captured, password, token, connection):
    install()
    sg = shotgun_api3.Shotgun(
        "https://site.example.com", login="bob", password=password, connect=False
    )
    sg._connection = connection
    assert sg.get_session_token() == token
    text = captured.text
    assert "Request body is b'" in text and "Response body is b'" in text
    assert '"user_login": "bob"' in text
    for secret_part in (password[:20], token):
        assert secret_part not in text
    uninstall()
    captured.lines.clear()
    sg.config.session_token = None
    sg.get_session_token()
    assert token in captured.text  # a test of the test: without the factory the token shows


def test_uninstall_restores_the_previous_factory(captured):
    before = logging.getLogRecordFactory()
    secret = _secret()
    register_secret(secret)
    install()
    assert is_installed() and logging.getLogRecordFactory() is not before
    uninstall()
    assert not is_installed() and logging.getLogRecordFactory() is before
    logging.getLogger("sgconnect.x").info("value %s", secret)
    assert secret in captured.text  # no longer redacted: the previous behaviour is back


def test_install_and_uninstall_are_idempotent(captured):
    before = logging.getLogRecordFactory()
    install()
    ours = logging.getLogRecordFactory()
    install()
    assert logging.getLogRecordFactory() is ours
    secret = _secret()
    logging.getLogger("tank.x").info("password=%s", secret)
    assert captured.lines == [f"tank.x INFO password={REDACTED}"]
    uninstall()
    uninstall()
    assert logging.getLogRecordFactory() is before and not is_installed()


def test_uninstall_under_another_wrapper_becomes_a_pass_through(captured):
    install()
    ours = logging.getLogRecordFactory()

    def theirs(*args, **kwargs):
        record = ours(*args, **kwargs)
        record.theirs = True
        return record

    logging.setLogRecordFactory(theirs)
    uninstall()
    assert logging.getLogRecordFactory() is theirs and not is_installed()
    secret = _secret()
    logging.getLogger("sgconnect.x").info("password=%s", secret)
    assert secret in captured.text and captured.records[-1].theirs
    install()
    assert is_installed()
    logging.getLogger("sgconnect.x").info("password=%s", secret)
    assert captured.lines[-1] == f"sgconnect.x INFO password={REDACTED}"


def test_install_is_thread_safe():
    before = logging.getLogRecordFactory()
    threads = [threading.Thread(target=install) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert logging.getLogRecordFactory().previous is before
    uninstall()
    assert logging.getLogRecordFactory() is before


def test_errors_are_redacted_when_built():
    from sgconnect.errors import LoginFailedError

    secret = _secret()
    error = LoginFailedError(f"the site said: {{'session_token': '{secret}'}}", "https://x.y")
    assert secret not in str(error) and secret not in repr(error)
