"""Generic entities for api3: any entity type, ``create``, ``update``, ``delete``, ``revive``,
``batch``, ``created_by``/``updated_by`` and ``Project.last_accessed_by_current_user``.

Project and HumanUser records live where the rest of the site keeps them (a created HumanUser
can log in with its ``password_proxy``); every other type lives in a per-type table. Enough for
python-api's own tests (``tests/python_api/run_upstream_tests.py``).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from .common import ERR_FAULT, _ApiError
from .state import HumanUserSpec

#: Entity types a site knows (a real site has more; these are what tests use).
ENTITY_TYPES = (
    "Project",
    "HumanUser",
    "ApiUser",
    "Asset",
    "Version",
    "Shot",
    "Sequence",
    "Note",
    "Playlist",
    "Step",
    "Task",
    "LocalStorage",
    "Page",
    "Attachment",
    "Group",
    "PublishedFile",
    "PublishedFileType",
    "Department",
)
_READ_ONLY = {"id", "type", "created_at", "updated_at", "created_by", "updated_by"}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _fields(args: Dict[str, Any]) -> Dict[str, Any]:
    data = args.get("fields") or []
    if isinstance(data, dict):
        return dict(data)
    out: Dict[str, Any] = {}
    for item in data:
        if not isinstance(item, dict) or "field_name" not in item:
            raise _ApiError(ERR_FAULT, "API create() malformed fields.")
        out[item["field_name"]] = item.get("value")
    return out


class EntitiesMixin:
    """api3 writes on entities of any type (called with ``self._lock`` held)."""

    def _person_ref(self, actor: Dict[str, Any]) -> Dict[str, Any]:
        """The acting person: the ``sudo_as_login`` target, else the user or the script."""
        login = actor.get("sudo") or actor["login"]
        if login in self._users:
            spec = self._users[login]
            return {"type": "HumanUser", "id": spec.id, "name": spec.name}
        spec = self._scripts[login]
        return {"type": "ApiUser", "id": spec.id, "name": spec.name}

    def _check_type(self, entity_type: Any, what: str) -> str:
        if entity_type not in ENTITY_TYPES:
            raise _ApiError(
                ERR_FAULT, f"API {what}() invalid/missing string entity 'type': {entity_type}"
            )
        return entity_type

    def _table(self, entity_type: str) -> Dict[int, Dict[str, Any]]:
        return self._entities.setdefault(entity_type, {})

    def _generic_records(self, entity_type: str) -> List[Dict[str, Any]]:
        return [dict(r) for r in self._table(entity_type).values()]

    def _find_record(self, entity_type: str, entity_id: Any) -> Optional[Dict[str, Any]]:
        for record in self._records(entity_type):
            if record["id"] == entity_id:
                return record
        return None

    def _returned(self, record: Dict[str, Any], fields: Any) -> Dict[str, Any]:
        out = {"type": record["type"], "id": record["id"]}
        for name in fields or []:
            if name not in ("type", "id"):
                out[name] = record.get(name)
        return out

    def _rpc_create(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        entity_type = self._check_type(args.get("type"), "create")
        data = _fields(args)
        person, now = self._person_ref(actor), _now()
        stamps = {"created_by": person, "updated_by": person, "created_at": now, "updated_at": now}
        if entity_type == "ApiUser":
            raise _ApiError(ERR_FAULT, "API create() ApiUser is not creatable here.")
        if entity_type == "Project":
            name = data.get("name")
            if not isinstance(name, str) or not name:
                raise _ApiError(ERR_FAULT, "API create() a Project needs a name.")
            project = self._add_project(name)
            project.update({k: v for k, v in data.items() if k not in _READ_ONLY}, **stamps)
            record = dict(project)
        elif entity_type == "HumanUser":
            login = data.get("login")
            if not isinstance(login, str) or not login or login in self._users:
                raise _ApiError(ERR_FAULT, f"API create() HumanUser login {login!r} is taken.")
            new_id = max([u.id for u in self._users.values()] + [1000]) + 1
            spec = HumanUserSpec(
                login,
                str(data.get("name") or login),
                new_id,
                email=data.get("email"),
                password=data.get("password_proxy") or None,
            )
            self._add_user(spec)
            extra = {
                k: v
                for k, v in data.items()
                if k not in _READ_ONLY | {"login", "name", "email", "password_proxy"}
            }
            self._user_fields[login] = {**extra, **stamps}
            record = self._find_record("HumanUser", new_id) or {}
        else:
            table = self._table(entity_type)
            new_id = max(list(table) + list(self._retired.get(entity_type, {})) + [0]) + 1
            record = {"type": entity_type, "id": new_id, **stamps}
            record.update({k: v for k, v in data.items() if k not in _READ_ONLY})
            table[new_id] = record
            record = dict(record)
        asked = list(data) + [f for f in args.get("return_fields") or [] if f not in data]
        return self._returned(record, [f for f in asked if f != "password_proxy"])

    def _rpc_update(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        entity_type = self._check_type(args.get("type"), "update")
        entity_id = args.get("id")
        data = {k: v for k, v in _fields(args).items() if k not in _READ_ONLY}
        asked = list(data)
        data.update(updated_by=self._person_ref(actor), updated_at=_now())
        if entity_type == "Project":
            project = next((p for p in self._projects if p["id"] == entity_id), None)
            if project is None:
                raise _ApiError(ERR_FAULT, f"API update() Project {entity_id} does not exist.")
            project.update(data)
        elif entity_type == "HumanUser":
            spec = next((u for u in self._users.values() if u.id == entity_id), None)
            if spec is None:
                raise _ApiError(ERR_FAULT, f"API update() HumanUser {entity_id} does not exist.")
            password = data.pop("password_proxy", None)
            if password:
                self._passwords[spec.login] = str(password)
                self._secrets.add(str(password))
            self._user_fields.setdefault(spec.login, {}).update(data)
        else:
            record = self._table(entity_type).get(entity_id)
            if record is None:
                raise _ApiError(
                    ERR_FAULT, f"API update() {entity_type} {entity_id} does not exist."
                )
            record.update(data)
        record = self._find_record(entity_type, entity_id) or {}
        return self._returned(record, [k for k in asked if k != "password_proxy"])

    def _rpc_delete(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        entity_type = self._check_type(args.get("type"), "delete")
        table = self._table(entity_type)
        if entity_type in ("Project", "HumanUser", "ApiUser"):
            raise _ApiError(ERR_FAULT, f"API delete() {entity_type} cannot be retired here.")
        record = table.pop(args.get("id"), None)
        if record is None:
            return False
        self._retired.setdefault(entity_type, {})[record["id"]] = record
        return True

    def _rpc_revive(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        entity_type = self._check_type(args.get("type"), "revive")
        record = self._retired.get(entity_type, {}).pop(args.get("id"), None)
        if record is None:
            return False
        self._table(entity_type)[record["id"]] = record
        return True

    def _rpc_batch(self, actor: Dict[str, Any], args: Any) -> Any:
        if not isinstance(args, list):
            raise _ApiError(ERR_FAULT, "API batch() requests must be a list.")
        results = []
        for request in args:
            kind = request.get("request_type") if isinstance(request, dict) else None
            handler = {
                "create": self._rpc_create,
                "update": self._rpc_update,
                "delete": self._rpc_delete,
            }.get(kind)
            if handler is None:
                raise _ApiError(ERR_FAULT, f"API batch() invalid request_type {kind!r}.")
            body = dict(request)
            if "data" in body and "fields" not in body:
                body["fields"] = body["data"]
            if "entity_id" in body and "id" not in body:
                body["id"] = body["entity_id"]
            if "entity_type" in body and "type" not in body:
                body["type"] = body["entity_type"]
            results.append(handler(actor, body))
        return results

    def _rpc_update_project_last_accessed_by_current_user(
        self, actor: Dict[str, Any], args: Dict[str, Any]
    ) -> Any:
        project_id = args.get("project_id")
        project = next((p for p in self._projects if p["id"] == project_id), None)
        if project is None:
            raise _ApiError(
                ERR_FAULT, f"API update_project_last_accessed() no Project {project_id}"
            )
        user_id = args.get("user_id")
        if user_id is not None:
            person = next((u.login for u in self._users.values() if u.id == user_id), None)
            if person is None:
                raise _ApiError(ERR_FAULT, f"API update_project_last_accessed() no user {user_id}")
        else:
            person = actor.get("sudo") or actor["login"]
        self._last_accessed[(person, project_id)] = _now()
        record = dict(project)
        record["last_accessed_by_current_user"] = self._last_accessed[(person, project_id)]
        return self._returned(record, ["last_accessed_by_current_user"])
