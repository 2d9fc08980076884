"""Generic entities for api3: any entity type, ``create``, ``update``, ``delete``, ``revive``,
``batch``, ``created_by``/``updated_by`` and ``Project.last_accessed_by_current_user``.

Project and HumanUser records live where the rest of the site keeps them (a created HumanUser
can log in with its ``password_proxy``); every other type lives in a per-type table. Enough for
python-api's own tests (``tests/python_api/run_upstream_tests.py``).
"""

from __future__ import annotations

from typing import Any, Dict

from .common import ERR_FAULT, ApiError, iso_now
from .state import HumanUserSpec, SiteState

_READ_ONLY = {"id", "type", "created_at", "updated_at", "created_by", "updated_by"}


def _fields(args: Dict[str, Any]) -> Dict[str, Any]:
    data = args.get("fields") or []
    if isinstance(data, dict):
        return dict(data)
    out: Dict[str, Any] = {}
    for item in data:
        if not isinstance(item, dict) or "field_name" not in item:
            raise ApiError(ERR_FAULT, "API create() malformed fields.")
        out[item["field_name"]] = item.get("value")
    return out


def _returned(record: Dict[str, Any], fields: Any) -> Dict[str, Any]:
    out = {"type": record["type"], "id": record["id"]}
    for name in fields or []:
        if name not in ("type", "id"):
            out[name] = record.get(name)
    return out


def update_entity(state: SiteState, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
    """api3 ``update`` as ``actor``: ``args`` is ``{"type", "id", "fields"}`` (with the lock held);
    returns the updated fields.

    :raises ApiError: 103, unknown type or no such entity.
    """
    entity_type = state.check_type(args.get("type"), "update")
    entity_id = args.get("id")
    data = {k: v for k, v in _fields(args).items() if k not in _READ_ONLY}
    asked = list(data)
    data.update(updated_by=state.person_ref(actor), updated_at=iso_now())
    if entity_type == "Project":
        project = next((p for p in state.projects if p["id"] == entity_id), None)
        if project is None:
            raise ApiError(ERR_FAULT, f"API update() Project {entity_id} does not exist.")
        project.update(data)
    elif entity_type == "HumanUser":
        spec = next((u for u in state.users.values() if u.id == entity_id), None)
        if spec is None:
            raise ApiError(ERR_FAULT, f"API update() HumanUser {entity_id} does not exist.")
        password = data.pop("password_proxy", None)
        if password:
            state.passwords[spec.login] = str(password)
            state.secrets.add(str(password))
        state.user_fields.setdefault(spec.login, {}).update(data)
    else:
        record = state.table(entity_type).get(entity_id)
        if record is None:
            raise ApiError(ERR_FAULT, f"API update() {entity_type} {entity_id} does not exist.")
        record.update(data)
    record = state.find_record(entity_type, entity_id) or {}
    return _returned(record, [k for k in asked if k != "password_proxy"])


def create_entity(
    state: SiteState, actor: Dict[str, Any], entity_type: str, data: Dict[str, Any], returned: Any
) -> Dict[str, Any]:
    """Create an entity as ``actor`` (with the lock held): ``data`` is ``{field: value}``
    (read-only fields dropped); returns ``type``, ``id`` and the fields named in ``returned``.
    ``created_by``/``updated_by`` are the acting person (the sudo target when there is one).

    :raises ApiError: 103, an ApiUser, a Project without a name or a HumanUser whose login is
        missing or taken.
    """
    person, now = state.person_ref(actor), iso_now()
    stamps = {"created_by": person, "updated_by": person, "created_at": now, "updated_at": now}
    if entity_type == "ApiUser":
        raise ApiError(ERR_FAULT, "API create() ApiUser is not creatable here.")
    if entity_type == "Project":
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(ERR_FAULT, "API create() a Project needs a name.")
        project = state.add_project(name)
        project.update({k: v for k, v in data.items() if k not in _READ_ONLY}, **stamps)
        record = dict(project)
    elif entity_type == "HumanUser":
        login = data.get("login")
        if not isinstance(login, str) or not login:
            raise ApiError(ERR_FAULT, "API create() a HumanUser needs a login.")
        if login in state.users:
            raise ApiError(ERR_FAULT, f"API create() HumanUser login {login!r} is taken.")
        new_id = max([u.id for u in state.users.values()] + [1000]) + 1
        spec = HumanUserSpec(
            login,
            str(data.get("name") or login),
            new_id,
            email=data.get("email"),
            password=data.get("password_proxy") or None,
        )
        state.add_user(spec)
        extra = {
            k: v
            for k, v in data.items()
            if k not in _READ_ONLY | {"login", "name", "email", "password_proxy"}
        }
        state.user_fields[login] = {**extra, **stamps}
        record = state.find_record("HumanUser", new_id) or {}
    else:
        table = state.table(entity_type)
        new_id = max(list(table) + list(state.retired.get(entity_type, {})) + [0]) + 1
        record = {"type": entity_type, "id": new_id, **stamps}
        record.update({k: v for k, v in data.items() if k not in _READ_ONLY})
        table[new_id] = record
        record = dict(record)
    asked = list(data) + [f for f in returned or [] if f not in data]
    return _returned(record, [f for f in asked if f != "password_proxy"])


def delete_entity(state: SiteState, entity_type: str, entity_id: Any) -> bool:
    """Retire an entity (with the lock held): True, or False when there is no live one.
    Projects retire like any generic entity; people do not.

    :raises ApiError: 103, a HumanUser or an ApiUser.
    """
    if entity_type in ("HumanUser", "ApiUser"):
        raise ApiError(ERR_FAULT, f"API delete() {entity_type} cannot be retired here.")
    retired = state.retired.setdefault(entity_type, {})
    if entity_type == "Project":
        project = next((p for p in state.projects if p["id"] == entity_id), None)
        if project is None:
            return False
        state.projects.remove(project)
        retired[entity_id] = project
        return True
    record = state.table(entity_type).pop(entity_id, None)
    if record is None:
        return False
    retired[record["id"]] = record
    return True


def revive_entity(state: SiteState, entity_type: str, entity_id: Any) -> bool:
    """Bring a retired entity back (with the lock held): True, or False when none is retired."""
    record = state.retired.get(entity_type, {}).pop(entity_id, None)
    if record is None:
        return False
    if entity_type == "Project":
        state.projects.append(record)
    else:
        state.table(entity_type)[record["id"]] = record
    return True


class EntitiesMixin:
    """api3 writes on entities of any type (called with ``self.state.lock`` held)."""

    def _rpc_create(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        entity_type = self.state.check_type(args.get("type"), "create")
        return create_entity(
            self.state, actor, entity_type, _fields(args), args.get("return_fields")
        )

    def _rpc_update(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        return update_entity(self.state, actor, args)

    def _rpc_delete(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        entity_type = self.state.check_type(args.get("type"), "delete")
        return delete_entity(self.state, entity_type, args.get("id"))

    def _rpc_revive(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        entity_type = self.state.check_type(args.get("type"), "revive")
        return revive_entity(self.state, entity_type, args.get("id"))

    def _rpc_batch(self, actor: Dict[str, Any], args: Any) -> Any:
        if not isinstance(args, list):
            raise ApiError(ERR_FAULT, "API batch() requests must be a list.")
        results = []
        for request in args:
            kind = request.get("request_type") if isinstance(request, dict) else None
            handler = {
                "create": self._rpc_create,
                "update": self._rpc_update,
                "delete": self._rpc_delete,
            }.get(kind)
            if handler is None:
                raise ApiError(ERR_FAULT, f"API batch() invalid request_type {kind!r}.")
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
        project = next((p for p in self.state.projects if p["id"] == project_id), None)
        if project is None:
            raise ApiError(ERR_FAULT, f"API update_project_last_accessed() no Project {project_id}")
        user_id = args.get("user_id")
        if user_id is not None:
            person = next((u.login for u in self.state.users.values() if u.id == user_id), None)
            if person is None:
                raise ApiError(ERR_FAULT, f"API update_project_last_accessed() no user {user_id}")
        else:
            person = actor.get("sudo") or actor["login"]
        self.state.last_accessed[(person, project_id)] = iso_now()
        record = dict(project)
        record["last_accessed_by_current_user"] = self.state.last_accessed[(person, project_id)]
        return _returned(record, ["last_accessed_by_current_user"])
