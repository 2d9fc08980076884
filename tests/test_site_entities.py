"""LocalSite's data surface through the real shotgun_api3: generic entities, writes, who wrote
them, per-person project access, uploads and downloads."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
import shotgun_api3

from sgconnect.testing import LocalSite

SCRIPT = "sgconnect_farm"


@pytest.fixture
def site():
    with LocalSite() as s:
        yield s


def _script(site: LocalSite, **kwargs) -> shotgun_api3.Shotgun:
    return shotgun_api3.Shotgun(site.url, SCRIPT, site.script_key(SCRIPT), **kwargs)


def test_create_find_update_delete_revive_of_any_type(site):
    sg = _script(site)
    project = sg.find_one("Project", [["name", "is", "Sintel"]])
    for entity_type in ("Asset", "Shot", "Version", "Note", "Playlist", "Step", "Task", "Page"):
        created = sg.create(entity_type, {"code": f"{entity_type} one", "project": project})
        assert created["type"] == entity_type and created["id"] >= 1
        found = sg.find_one(entity_type, [["project", "is", project]], ["code"])
        assert found == {"type": entity_type, "id": created["id"], "code": f"{entity_type} one"}
        assert sg.update(entity_type, created["id"], {"code": "renamed"}) == {
            "type": entity_type,
            "id": created["id"],
            "code": "renamed",
        }
        assert sg.delete(entity_type, created["id"]) is True
        assert sg.find_one(entity_type, [["id", "is", created["id"]]]) is None
        assert sg.revive(entity_type, created["id"]) is True
        assert (
            sg.find_one(entity_type, [["id", "is", created["id"]]], ["code"])["code"] == "renamed"
        )


def test_local_storage_and_unknown_types(site):
    sg = _script(site)
    assert sg.find("LocalStorage", []) == []
    storage = sg.create("LocalStorage", {"code": "primary", "linux_path": "/mnt/projects"})
    assert sg.find_one("LocalStorage", [["code", "is", "primary"]])["id"] == storage["id"]
    with pytest.raises(shotgun_api3.Fault, match="entity 'type'"):
        sg.find("NotAType", [])


def test_batch(site):
    sg = _script(site)
    results = sg.batch(
        [
            {"request_type": "create", "entity_type": "Shot", "data": {"code": "a"}},
            {"request_type": "create", "entity_type": "Shot", "data": {"code": "b"}},
        ]
    )
    assert [r["code"] for r in results] == ["a", "b"]
    sg.batch(
        [
            {
                "request_type": "update",
                "entity_type": "Shot",
                "entity_id": results[0]["id"],
                "data": {"code": "a2"},
            },
            {"request_type": "delete", "entity_type": "Shot", "entity_id": results[1]["id"]},
        ]
    )
    assert [s["code"] for s in sg.find("Shot", [], ["code"])] == ["a2"]


def test_created_by_is_the_acting_person_or_the_sudo_target(site):
    created = _script(site).create("Version", {"code": "v1"}, ["created_by", "updated_by"])
    assert created["created_by"] == {"type": "ApiUser", "id": 101, "name": SCRIPT}
    sudo = _script(site, sudo_as_login="carol")
    created = sudo.create("Version", {"code": "v2"}, ["created_by"])
    assert created["created_by"] == {"type": "HumanUser", "id": 44, "name": "Carol Chen"}
    human = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice"))
    human.update("Version", created["id"], {"code": "v2b"})
    assert (
        human.find_one("Version", [["id", "is", created["id"]]], ["updated_by"])["updated_by"][
            "name"
        ]
        == "Alice Anders"
    )


def test_human_user_fields_and_a_created_user_can_log_in(site):
    sg = _script(site)
    alice = sg.find_one("HumanUser", [["login", "is", "alice"]], ["locked_until", "sg_status_list"])
    assert alice["locked_until"] is None and alice["sg_status_list"] == "act"
    sg.update("HumanUser", alice["id"], {"locked_until": None, "sg_status_list": "dis"})
    with pytest.raises(shotgun_api3.Fault, match="inactive user account"):
        _script(site, sudo_as_login="alice").find("Project", [])
    dana = sg.create(
        "HumanUser", {"login": "dana", "name": "Dana Diaz", "password_proxy": "dana-pw-for-tests"}
    )
    person = shotgun_api3.Shotgun(site.url, login="dana", password="dana-pw-for-tests")
    assert person.find_one("HumanUser", [["login", "is", "dana"]])["id"] == dana["id"]


def test_project_last_accessed_is_per_person(site):
    alice = shotgun_api3.Shotgun(site.url, login="alice", password=site.password("alice"))
    carol = shotgun_api3.Shotgun(site.url, login="carol", password=site.password("carol"))
    project = alice.find_one("Project", [["name", "is", "Sintel"]])
    alice.update_project_last_accessed(project)
    fields = ["last_accessed_by_current_user"]
    seen = alice.find_one("Project", [["id", "is", project["id"]]], fields)
    assert seen["last_accessed_by_current_user"] is not None
    assert carol.find_one("Project", [["id", "is", project["id"]]], fields)[fields[0]] is None


def test_upload_thumbnail_and_file_then_download(site, tmp_path):
    sg = shotgun_api3.Shotgun(site.url, session_token=site.issue_session("alice"))
    version = sg.create("Version", {"code": "with files"})
    image = tmp_path / "thumb.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"pixels" * 10)
    thumb_id = sg.upload_thumbnail("Version", version["id"], str(image))
    assert isinstance(thumb_id, int)
    url = sg.find_one("Version", [["id", "is", version["id"]]], ["image"])["image"]
    assert "/images/status/transient/" in url
    document = tmp_path / "notes.txt"
    document.write_bytes(b"take 3 is the one")
    attachment_id = sg.upload("Version", version["id"], str(document), field_name="sg_uploaded")
    this_file = sg.find_one("Version", [["id", "is", version["id"]]], ["sg_uploaded"])[
        "sg_uploaded"
    ]
    assert this_file["id"] == attachment_id and this_file["name"] == "notes.txt"
    # shotgun_api3 scopes its _session_id cookie to "host:port", which no cookie jar sends to a
    # site with a port: a browser-like client sends the cookie itself.
    request = urllib.request.Request(
        this_file["url"], headers={"Cookie": f"_session_id={sg.get_session_token()}"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.read() == b"take 3 is the one"
    with urllib.request.urlopen(url, timeout=10) as reply:  # the transient thumbnail
        assert reply.headers.get_content_type() == "image/png"


def test_upload_refused_without_credentials(site, tmp_path):
    request = urllib.request.Request(
        site.url + "/upload/upload_file", data=b"entity_type=Version", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(site.url + "/file_serve/attachment/1", timeout=10)
    assert refused.value.code == 401


def test_filters_refuse_what_a_real_site_refuses(site):
    sg = _script(site)
    with pytest.raises(shotgun_api3.Fault, match="relation"):
        sg.find("Project", [["name", "sounds_like", "Sintel"]])
