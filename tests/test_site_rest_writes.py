"""LocalSite's REST writes on the wire: ``POST /api/v1/entity/<collection>`` (201),
``PATCH .../<id>`` (200), ``DELETE .../<id>`` (204, no body), ``POST .../<id>?revive=true``
(200), the JSON:API error envelope for a bad field, a read-only field and an unknown id, and the
same store as api3 (a record written through REST is read by the real shotgun_api3, and
``created_by``/``updated_by`` is the acting person, the sudo target when there is one)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional, Tuple

import pytest
import shotgun_api3

from sgconnect.testing import LocalSite

SCRIPT = "sgconnect_farm"


@pytest.fixture
def site():
    with LocalSite() as s:
        yield s


def _call(
    url: str, *, method: str = "GET", body: Any = None, token: str = ""
) -> Tuple[int, Optional[str], Any]:
    """``(status, Content-Type, parsed JSON or None for an empty body)``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            status, kind, raw = reply.status, reply.headers.get("Content-Type"), reply.read()
    except urllib.error.HTTPError as error:
        status, kind, raw = error.code, error.headers.get("Content-Type"), error.read()
    return status, kind, json.loads(raw) if raw else None


def _token(site: LocalSite, **form: str) -> str:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(site.url + "/api/v1/auth/access_token", data, timeout=10) as r:
        return json.loads(r.read())["access_token"]


def _alice(site: LocalSite) -> str:
    return _token(site, grant_type="password", username="alice", password=site.password("alice"))


def _assert_error(reply: Any, status: int, code: int, pointer: Optional[str] = None) -> None:
    (error,) = reply["errors"]
    assert set(error) >= {"id", "status", "code", "title", "detail", "source"}
    assert (error["status"], error["code"]) == (status, code)
    assert error["title"] and error["detail"]
    if pointer is not None:
        assert error["source"] == {"pointer": pointer}


def test_create_returns_201_with_the_record_found_by_api3(site):
    token = _alice(site)
    sg = shotgun_api3.Shotgun(site.url, SCRIPT, site.script_key(SCRIPT))
    project = sg.find_one("Project", [["name", "is", "Sintel"]])
    status, kind, reply = _call(
        site.url + "/api/v1/entity/assets",
        method="POST",
        body={"code": "tree", "project": project},
        token=token,
    )
    assert (status, kind) == (201, "application/json")
    data = reply["data"]
    assert set(data) == {"type", "id", "attributes", "relationships", "links"}
    assert data["type"] == "Asset" and data["attributes"]["code"] == "tree"
    assert data["links"]["self"] == f"/api/v1/entity/assets/{data['id']}"
    assert data["relationships"]["project"]["data"]["id"] == project["id"]
    alice = site.state.users["alice"].id
    assert data["relationships"]["created_by"]["data"]["id"] == alice
    found = sg.find_one("Asset", [["id", "is", data["id"]]], ["code", "created_by"])
    assert found["code"] == "tree"
    assert found["created_by"]["type"] == "HumanUser" and found["created_by"]["id"] == alice


def test_created_by_is_the_sudo_target_of_a_script_token(site):
    token = _token(
        site,
        grant_type="client_credentials",
        client_id=SCRIPT,
        client_secret=site.script_key(SCRIPT),
        scope="sudo_as_login:bob",
    )
    status, _, reply = _call(
        site.url + "/api/v1/entity/Shot", method="POST", body={"code": "sh010"}, token=token
    )
    assert status == 201
    by = reply["data"]["relationships"]["created_by"]["data"]
    assert (by["type"], by["id"]) == ("HumanUser", site.state.users["bob"].id)


def test_patch_returns_200_and_writes_the_store(site):
    token = _alice(site)
    base = site.url + "/api/v1/entity/projects"
    created = _call(base, method="POST", body={"name": "Patched"}, token=token)[2]["data"]
    status, kind, reply = _call(
        f"{base}/{created['id']}", method="PATCH", body={"sg_description": "sequel"}, token=token
    )
    assert (status, kind) == (200, "application/json")
    assert reply["data"]["attributes"]["sg_description"] == "sequel"
    assert reply["data"]["attributes"]["name"] == "Patched"
    sg = shotgun_api3.Shotgun(site.url, SCRIPT, site.script_key(SCRIPT))
    found = sg.find_one("Project", [["id", "is", created["id"]]], ["sg_description"])
    assert found["sg_description"] == "sequel"


def test_delete_returns_204_then_404_and_revive_brings_it_back(site):
    token = _alice(site)
    base = site.url + "/api/v1/entity/projects"
    created = _call(base, method="POST", body={"name": "Gone"}, token=token)[2]["data"]
    url = f"{base}/{created['id']}"
    assert _call(url, method="DELETE", token=token) == (204, None, None)
    assert "Gone" not in site.projects
    status, _, reply = _call(url, token=token)
    assert status == 404
    _assert_error(reply, 404, 103)
    status, _, reply = _call(url, method="DELETE", token=token)
    assert status == 404
    _assert_error(reply, 404, 103)
    status, _, reply = _call(url + "?revive=true", method="POST", token=token)
    assert status == 200 and reply["data"]["attributes"]["name"] == "Gone"
    assert "Gone" in site.projects
    status, _, reply = _call(url + "?revive=true", method="POST", token=token)
    assert status == 404  # nothing retired any more


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(
    "field,words", [("Not A Field", "doesn't exist"), ("created_by", "read-only")]
)
def test_a_bad_or_read_only_field_is_a_400_envelope_naming_it(site, method, field, words):
    token = _alice(site)
    base = site.url + "/api/v1/entity/shots"
    created = _call(base, method="POST", body={"code": "sh"}, token=token)[2]["data"]
    url = base if method == "POST" else f"{base}/{created['id']}"
    status, kind, reply = _call(url, method=method, body={field: 1}, token=token)
    assert (status, kind) == (400, "application/json")
    _assert_error(reply, 400, 103, pointer=f"/{field}")
    assert words in reply["errors"][0]["detail"]
    assert site.state.find_record("Shot", created["id"])["code"] == "sh"  # nothing written


def test_unknown_ids_collections_and_no_token(site):
    token = _alice(site)
    status, _, reply = _call(
        site.url + "/api/v1/entity/shots/9999", method="PATCH", body={"code": "x"}, token=token
    )
    _assert_error(reply, 404, 103)
    status, _, reply = _call(
        site.url + "/api/v1/entity/spaceships", method="POST", body={"code": "x"}, token=token
    )
    _assert_error(reply, 404, 103)
    status, _, reply = _call(
        site.url + "/api/v1/entity/shots", method="POST", body={"code": "x"}, token=""
    )
    _assert_error(reply, 401, 102)
    assert site.state.table("Shot") == {}
    status, _, reply = _call(
        site.url + "/api/v1/entity/shots", method="POST", body=["code"], token=token
    )
    _assert_error(reply, 400, 103)
