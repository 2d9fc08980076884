"""The fast session-cache reader agrees with tk-core: written by tk-core, read by us."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sgconnect import session_cache as fast
from sgconnect.session_cache import SavedSession

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "python"


def _token() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def tk():
    """tk-core's own session cache module."""
    from tank.authentication import session_cache

    return session_cache


def _tk_root(generation=None) -> str:
    from tank.util import LocalFileStorageManager as Lfsm

    gen = Lfsm.CORE_V18 if generation is None else generation
    return Lfsm.get_global_root(Lfsm.CACHE, generation=gen)


def _assert_agree(tk, host: str, login: str | None = None) -> SavedSession | None:
    """Our reading of (host, login) equals tk-core's get_session_data / get_current_user."""
    assert fast.site_cache_file(host) == tk._get_site_authentication_file_location(host)
    assert fast.current_login(host) == (tk.get_current_user(host) or None)
    wanted = login if login is not None else tk.get_current_user(host)
    expected = tk.get_session_data(host, wanted) if wanted else None
    saved = fast.read_saved_session(host, login)
    if expected is None:
        assert saved is None
    else:
        assert saved is not None
        assert saved.login == expected["login"]
        assert saved.session_token == expected["session_token"]
        assert saved.session_metadata == expected.get("session_metadata")
        assert saved.path == tk._get_site_authentication_file_location(host)
    return saved


# --------------------------------------------------------------------------- pure


def test_repr_hides_token_and_metadata():
    token, metadata = _token(), _token()
    saved = SavedSession("https://a.test", "alice", token, metadata, "/x/authentication.yml")
    assert token not in repr(saved) and metadata not in repr(saved)
    assert token not in str(saved)
    assert "alice" in repr(saved)


def test_missing_cache_is_no_session(caplog):
    caplog.set_level(logging.DEBUG)
    assert fast.read_saved_session("https://nobody.test") is None
    assert fast.current_host() is None
    assert fast.current_login("https://nobody.test") is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_cache_root_honours_shotgun_home(isolated_shotgun_home, monkeypatch):
    assert fast.cache_root() == str(isolated_shotgun_home)
    monkeypatch.setenv("SHOTGUN_HOME", "~/sg_$SGCONNECT_TEST_VAR/../sg")
    monkeypatch.setenv("SGCONNECT_TEST_VAR", "x")
    assert fast.cache_root() == os.path.abspath(os.path.expanduser("~/sg_x/../sg"))


# --------------------------------------------------------------------------- locations


HOSTS = [
    "https://mysite.shotgunstudio.com",
    "https://MySite.ShotgunStudio.com/",
    "https://studio.shotgrid.autodesk.com",
    "http://localhost:8001",
    "http://localhost:8002/path?q=1",
    "https://shotgun.internal.int:8443",
    "https://user@host.example.com",
    "mysite.shotgunstudio.com",  # no scheme: tk-core maps it to the global root (a quirk)
]


@pytest.mark.tkcore
@pytest.mark.parametrize("host", HOSTS)
def test_locations_match_tkcore(tk, host):
    assert fast.cache_root() == _tk_root()
    assert fast.site_cache_file(host) == tk._get_site_authentication_file_location(host)
    assert fast.global_cache_file() == tk._get_global_authentication_file_location()


@pytest.mark.tkcore
@pytest.mark.parametrize(
    "url",
    HOSTS + [" https://a.test/ ", "localhost:8001", "http://[::1]:8000", "HTTP://A.TEST:80/x#y"],
)
def test_sanitize_matches_tkcore(url):
    from tank.util.shotgun.connection import sanitize_url

    assert fast.sanitize_url(url) == sanitize_url(url)


@pytest.mark.tkcore
@pytest.mark.parametrize("platform", ["darwin", "win32", "linux"])
def test_per_os_roots_match_tkcore(tk, monkeypatch, tmp_path, platform):
    monkeypatch.delenv("SHOTGUN_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("APPDATA", str(tmp_path / "AppData"))
    monkeypatch.setattr(sys, "platform", platform)
    from tank.util import LocalFileStorageManager as Lfsm

    for generation in (Lfsm.CORE_V17, Lfsm.CORE_V18):
        assert fast.cache_root() == _tk_root(generation)
        for host in HOSTS[:3]:
            expected = Lfsm.get_site_root(host, Lfsm.CACHE, generation=generation)
            assert fast.site_folder(host, generation) == os.path.basename(expected)
    assert fast.site_cache_file(HOSTS[0]) == tk._get_site_authentication_file_location(HOSTS[0])


# --------------------------------------------------------------------------- agreement


@pytest.mark.tkcore
def test_cache_session_data_current_user_and_host(tk):
    host, login, token, metadata = "https://mysite.shotgunstudio.com", "alice", _token(), _token()
    tk.cache_session_data(host, login, token, metadata)
    tk.set_current_user(host, login)
    tk.set_current_host(host)

    assert fast.current_host() == tk.get_current_host() == host
    saved = _assert_agree(tk, host)
    assert saved == SavedSession(host, login, token, metadata, fast.site_cache_file(host))
    assert os.path.basename(os.path.dirname(saved.path)) == "mysite"


@pytest.mark.tkcore
def test_current_host_is_sanitized_like_tkcore(tk):
    tk.set_current_host("HTTPS://Studio.ShotGrid.Autodesk.com/some/page")
    assert fast.current_host() == tk.get_current_host() == "https://studio.shotgrid.autodesk.com"
    # A host written by hand without scheme: tk-core sanitises it when reading.
    path = fast.global_cache_file()
    Path(path).write_text(
        yaml.safe_dump({"current_host": " Other.Example.com ", "recent_hosts": []})
    )
    assert fast.current_host() == tk.get_current_host() == "https://other.example.com"


@pytest.mark.tkcore
def test_several_sites_in_one_home(tk):
    sites = {
        "https://one.shotgunstudio.com": ("ann", _token()),
        "https://two.shotgrid.autodesk.com": ("bob", _token()),
        "https://three.example.com:8443": ("cy", _token()),
    }
    for host, (login, token) in sites.items():
        tk.cache_session_data(host, login, token)
        tk.set_current_user(host, login)
        tk.set_current_host(host)
    assert fast.current_host() == tk.get_current_host() == "https://three.example.com:8443"
    for host, (login, token) in sites.items():
        saved = _assert_agree(tk, host)
        assert (saved.login, saved.session_token) == (login, token)
    folders = sorted(p.name for p in Path(fast.cache_root()).iterdir() if p.is_dir())
    assert folders == ["one", "three.example.com", "two"]


@pytest.mark.tkcore
def test_sites_differing_by_port_share_one_file(tk):
    a, b = "http://localhost:8001", "http://localhost:8002"
    token_a, token_b, token_c = _token(), _token(), _token()
    tk.cache_session_data(a, "alice", token_a)
    tk.cache_session_data(b, "bob", token_b)
    tk.set_current_user(b, "bob")
    assert fast.site_cache_file(a) == fast.site_cache_file(b)
    # The current user is per file, not per port: both sites see bob.
    assert _assert_agree(tk, a).session_token == token_b
    assert _assert_agree(tk, a, "alice").session_token == token_a
    # The same login on both ports is one entry: the last write wins for both.
    tk.cache_session_data(a, "bob", token_c)
    assert _assert_agree(tk, b).session_token == token_c


@pytest.mark.tkcore
def test_mixed_case_and_spaces(tk):
    host = "https://MixedCase.ShotgunStudio.com"
    token = _token()
    tk.cache_session_data(host, "  Alice.Smith  ", token)
    tk.set_current_user(host, " Alice.Smith ")
    for asked in (None, "alice.smith", "ALICE.SMITH", "  alice.Smith\t"):
        saved = _assert_agree(tk, host, asked)
        assert saved.login == "Alice.Smith" and saved.session_token == token
    # The host is matched case-insensitively too; ours is reported sanitised (lower case).
    saved = _assert_agree(tk, "https://mixedcase.shotgunstudio.com")
    assert saved.site == "https://mixedcase.shotgunstudio.com"
    assert _assert_agree(tk, host, "alice") is None


@pytest.mark.tkcore
def test_multiple_users_and_a_user_without_token(tk):
    host = "https://multi.shotgunstudio.com"
    tokens = {login: _token() for login in ("ann", "bob", "cy")}
    for login, token in tokens.items():
        tk.cache_session_data(host, login, token)
    tk.set_current_user(host, "bob")
    path = fast.site_cache_file(host)
    document = yaml.safe_load(Path(path).read_text())
    document["users"].insert(0, {"login": "Cy", "session_token": None})  # first match, no token
    document["users"].append({"login": "dee"})  # no token at all
    document["users"].append({"login": "eve", "session_token": ""})
    Path(path).write_text(yaml.safe_dump(document))

    assert _assert_agree(tk, host).session_token == tokens["bob"]
    assert _assert_agree(tk, host, "ann").session_token == tokens["ann"]
    # A matching entry without a token is skipped; a later entry with a token is used.
    assert _assert_agree(tk, host, "cy").session_token == tokens["cy"]
    assert _assert_agree(tk, host, "dee") is None
    assert _assert_agree(tk, host, "eve") is None
    assert _assert_agree(tk, host, "nobody") is None


@pytest.mark.tkcore
def test_current_user_without_entry_or_unset(tk):
    host = "https://lonely.shotgunstudio.com"
    tk.cache_session_data(host, "ann", _token())
    assert _assert_agree(tk, host) is None  # no current_user yet
    tk.set_current_user(host, "ghost")
    assert _assert_agree(tk, host) is None  # current_user has no entry


@pytest.mark.tkcore
@pytest.mark.parametrize("metadata", [None, "", "b64-cookies"])
def test_session_metadata_only_when_truthy(tk, metadata):
    host = "https://meta.shotgunstudio.com"
    value = f"{metadata}-{_token()}" if metadata else metadata
    tk.cache_session_data(host, "ann", _token(), value)
    tk.set_current_user(host, "ann")
    saved = _assert_agree(tk, host)
    assert saved.session_metadata == (value or None)


@pytest.mark.tkcore
def test_metadata_rewritten_to_none_by_tkcore(tk):
    """tk-core overwrites truthy metadata with None (stored as null): it reads as absent."""
    host = "https://meta2.shotgunstudio.com"
    tk.cache_session_data(host, "ann", _token(), _token())
    tk.cache_session_data(host, "ann", _token(), None)
    assert _assert_agree(tk, host, "ann").session_metadata is None


# --------------------------------------------------------------------------- authenticator


@pytest.mark.tkcore
def test_authenticator_writes_what_we_read(tk):
    from tank.authentication import DefaultsManager, ShotgunAuthenticator

    host, token = "https://auth.shotgrid.autodesk.com", _token()
    authenticator = ShotgunAuthenticator(DefaultsManager(fixed_host=host))
    user = authenticator.create_session_user("Carol", session_token=token, host=host)
    assert user.login == "Carol"
    saved = fast.read_saved_session(host, "carol")
    assert saved is not None and saved.session_token == token and saved.login == "Carol"
    assert saved.path.endswith(os.path.join("auth", "authentication.yml"))


@pytest.mark.tkcore
def test_default_user_agrees(tk):
    from tank.authentication import ShotgunAuthenticator

    assert ShotgunAuthenticator().get_default_user() is None
    assert fast.current_host() is None

    for host, login in (
        ("https://first.example.com", "ann"),
        ("https://second.example.com", "bob"),
    ):
        tk.cache_session_data(host, login, _token())
        tk.set_current_user(host, login)
        tk.set_current_host(host)

    default = ShotgunAuthenticator().get_default_user()
    saved = fast.read_saved_session(fast.current_host())
    assert default is not None and saved is not None
    assert default.host == saved.site == "https://second.example.com"
    assert default.login == saved.login == "bob"
    assert default.impl.get_session_token() == saved.session_token


# --------------------------------------------------------------------------- legacy CORE_V17


def _write_like_tkcore(path: str, document: dict) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "w") as handle:
        yaml.safe_dump(document, handle)


@pytest.fixture
def linux_home(monkeypatch, tmp_path):
    """No SHOTGUN_HOME: the per-OS root (~/.shotgun on Linux) under a temporary HOME."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the legacy HOME layout test is written for Linux roots")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("SHOTGUN_HOME")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.mark.tkcore
def test_legacy_v17_site_folder_under_home(tk, linux_home):
    from tank.util import LocalFileStorageManager as Lfsm

    host, token = "https://legacy.shotgunstudio.com", _token()
    assert fast.cache_root() == str(linux_home / ".shotgun") == _tk_root()
    v17 = os.path.join(
        Lfsm.get_site_root(host, Lfsm.CACHE, generation=Lfsm.CORE_V17), "authentication.yml"
    )
    v18 = str(linux_home / ".shotgun" / "legacy" / "authentication.yml")
    assert v17 == str(linux_home / ".shotgun" / "legacy.shotgunstudio.com" / "authentication.yml")
    _write_like_tkcore(
        v17, {"current_user": "old", "users": [{"login": "old", "session_token": token}]}
    )
    assert fast.site_cache_file(host) == v17
    saved = _assert_agree(tk, host)
    assert saved.session_token == token and saved.path == v17

    # tk-core keeps writing into the legacy file while the v18 one does not exist.
    newer = _token()
    tk.cache_session_data(host, "old", newer)
    assert not os.path.exists(v18)
    assert _assert_agree(tk, host).session_token == newer

    # Once the v18 file exists, it wins, even without the user.
    _write_like_tkcore(v18, {"users": []})
    assert fast.site_cache_file(host) == v18
    assert _assert_agree(tk, host) is None


@pytest.mark.tkcore
def test_legacy_v17_site_folder_under_shotgun_home(tk):
    """With SHOTGUN_HOME both generations share a root, but v17 keeps the full host name."""
    host, token = "https://sandbox.shotgrid.autodesk.com", _token()
    v17 = os.path.join(fast.cache_root(), "sandbox.shotgrid.autodesk.com", "authentication.yml")
    _write_like_tkcore(
        v17, {"current_user": "Z", "users": [{"login": "z", "session_token": token}]}
    )
    assert _assert_agree(tk, host).session_token == token


@pytest.mark.tkcore
def test_legacy_global_file_is_the_same_file(tk, linux_home):
    tk.set_current_host("https://legacy.shotgunstudio.com")
    assert fast.global_cache_file() == str(linux_home / ".shotgun" / "authentication.yml")
    assert fast.global_cache_file() == tk._get_global_authentication_file_location()
    assert fast.current_host() == tk.get_current_host()


# --------------------------------------------------------------------------- corrupt files


def _site_file(host: str) -> Path:
    path = Path(fast.site_cache_file(host))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _check_ignored(caplog, path: Path, secret: str) -> None:
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].name == "sgconnect.session_cache"
    assert str(path) in warnings[0].getMessage() and "Ignoring" in warnings[0].getMessage()
    for record in caplog.records:
        assert secret[:8] not in record.getMessage()
        assert not record.exc_info


HOST = "https://broken.shotgunstudio.com"
CORRUPT = [
    "current_user: ann\nusers:\n- {login: ann, session_token: SECRET\n  bad: [\n",
    "- login: ann\n  session_token: SECRET\n",
    "current_user: ann\nusers: {login: ann, session_token: SECRET}\n",
    "current_user: ann\nusers: [SECRET]\n",
    "current_user: ann\nusers:\n- {session_token: SECRET}\n- {login: ann, session_token: x}\n",
    "current_user: ann\nusers:\n- {login: 7, session_token: SECRET}\n",
    "current_user: [ann]\nusers:\n- {login: ann, session_token: SECRET}\n",
    "current_user: ann\nusers: null\nnote: SECRET\n",
    "current_user: ann\nusers:\n- {login: ann, session_token: !!python/tuple [SECRET]}\n",
]
CORRUPT_IDS = [
    "bad-yaml",
    "list",
    "users-dict",
    "entry-not-dict",
    "entry-without-login",
    "login-not-str",
    "current-user-not-str",
    "users-null",
    "python-tag",
]


@pytest.mark.parametrize("content", CORRUPT, ids=CORRUPT_IDS)
def test_corrupt_site_file_is_ignored(caplog, content):
    caplog.set_level(logging.DEBUG)
    secret = _token()
    path = _site_file(HOST)
    path.write_text(content.replace("SECRET", secret))
    assert fast.read_saved_session(HOST) is None
    _check_ignored(caplog, path, secret)
    caplog.clear()
    assert fast.read_saved_session(HOST, "ann") is None
    _check_ignored(caplog, path, secret)


@pytest.mark.tkcore
@pytest.mark.parametrize("content", CORRUPT[:-1], ids=CORRUPT_IDS[:-1])
def test_tkcore_also_finds_no_session_in_corrupt_file(tk, content):
    """Agreement on corrupt files (tk-core's FullLoader does read the python-tag case)."""
    path = _site_file(HOST)
    path.write_text(content.replace("SECRET", _token()))
    assert tk.get_session_data(HOST, "ann") is None
    assert fast.read_saved_session(HOST, "ann") is None


def test_yaml_error_text_would_have_leaked(caplog):
    """The reason our warning omits str(exc): PyYAML quotes (part of) the offending line."""
    secret = _token()
    text = f"users:\n- {{login: ann, session_token: {secret}\n  bad: [\n"
    with pytest.raises(yaml.YAMLError) as info:
        yaml.safe_load(text)
    assert secret[:4] in str(info.value)


def test_corrupt_global_file_is_ignored(caplog):
    caplog.set_level(logging.DEBUG)
    secret = _token()
    path = Path(fast.global_cache_file())
    path.write_text(f"current_host: https://a.test\nrecent_hosts: [{secret}\n")
    assert fast.current_host() is None
    _check_ignored(caplog, path, secret)
    caplog.clear()
    path.write_text(f"current_host: [{secret}]\n")
    assert fast.current_host() is None
    _check_ignored(caplog, path, secret)


def test_directory_in_place_of_file_is_ignored(caplog):
    caplog.set_level(logging.DEBUG)
    path = _site_file(HOST)
    path.mkdir()
    assert fast.read_saved_session(HOST, "ann") is None
    _check_ignored(caplog, path, "never-there")


@pytest.mark.skipif(not hasattr(os, "seteuid"), reason="POSIX file modes")
def test_unreadable_file_is_ignored(caplog, tmp_path, monkeypatch):
    caplog.set_level(logging.DEBUG)
    as_root = os.geteuid() == 0
    opened_folders = []
    if as_root:  # "nobody" must be able to see the file, and only be refused reading it
        home = tmp_path / "traversable_home"
        home.mkdir()
        for folder in (tmp_path.parent.parent, tmp_path.parent, tmp_path, home):
            opened_folders.append((folder, folder.stat().st_mode))
            folder.chmod(folder.stat().st_mode | 0o111)
        monkeypatch.setenv("SHOTGUN_HOME", str(home))
    secret = _token()
    path = _site_file(HOST)
    path.parent.chmod(0o711)
    path.write_text(f"current_user: ann\nusers: [{{login: ann, session_token: {secret}}}]\n")
    path.chmod(0)
    try:
        if as_root:  # root reads anything: read as "nobody", as a user would be denied
            os.seteuid(65534)
        assert fast.read_saved_session(HOST) is None
    finally:
        if as_root:
            os.seteuid(0)
        path.chmod(0o600)
        for folder, mode in opened_folders:
            folder.chmod(mode)
    _check_ignored(caplog, path, secret)


def test_permission_error_is_ignored(caplog, monkeypatch):
    """The permission-denied branch itself, independent of the uid running the tests."""
    caplog.set_level(logging.DEBUG)
    path = _site_file(HOST)
    path.write_text("current_user: ann\nusers: []\n")
    real_open = os.open

    def deny(file, *args, **kwargs):
        if os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("os.open", deny)
    assert fast.read_saved_session(HOST) is None
    _check_ignored(caplog, path, "never-there")


def test_other_sites_unaffected_and_nothing_written():
    good, token = "https://good.shotgunstudio.com", _token()
    good_path = _site_file(good)
    good_path.write_text(
        yaml.safe_dump({"current_user": "ann", "users": [{"login": "ann", "session_token": token}]})
    )
    bad_path = _site_file(HOST)
    bad_path.write_text("{{{")
    before = {p: p.read_bytes() for p in (good_path, bad_path)}
    assert fast.read_saved_session(HOST) is None
    assert fast.read_saved_session(good).session_token == token
    assert {p: p.read_bytes() for p in before} == before


def test_empty_file_is_no_session_without_warning(caplog):
    path = _site_file(HOST)
    path.write_text("")
    assert fast.read_saved_session(HOST, "ann") is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --------------------------------------------------------------------------- imports


@pytest.mark.tkcore
def test_fast_path_imports_neither_tkcore_nor_qt(tk, isolated_shotgun_home):
    host, token = "https://fast.shotgunstudio.com", _token()
    tk.cache_session_data(host, "ann", token)
    tk.set_current_user(host, "ann")
    tk.set_current_host(host)

    code = (
        "import json, sys\n"
        "from sgconnect.session_cache import current_host, read_saved_session\n"
        "saved = read_saved_session(current_host())\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tank', 'sgtk', 'tank_vendor')"
        " or m.startswith(('PySide', 'shiboken')))\n"
        "print(json.dumps({'token': saved.session_token, 'bad': bad}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT), SHOTGUN_HOME=str(isolated_shotgun_home))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"token": token, "bad": []}
