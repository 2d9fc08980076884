"""The api3 JSON-RPC endpoint (``POST /api3/json``) and its filters."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Sequence

from .common import (
    ERR_AUTH,
    ERR_FAULT,
    ERR_PERMISSION,
    FULL_VERSION,
    SERVER_VERSION,
    _ApiError,
    _Ctx,
    _Redirect,
)


def _match(value: Any, relation: str, values: Sequence[Any]) -> bool:
    """Apply one api3 filter condition to a field value."""

    def norm(v: Any) -> Any:
        if isinstance(v, dict) and "id" in v:
            return (v.get("type"), v["id"])
        return v

    value = norm(value)
    vals = [norm(v) for v in values]
    first = vals[0] if vals else None
    if relation == "is":
        return value == first
    if relation == "is_not":
        return value != first
    if relation == "in":
        flat = vals[0] if len(vals) == 1 and isinstance(vals[0], list) else vals
        return value in [norm(v) for v in flat]
    if relation == "not_in":
        flat = vals[0] if len(vals) == 1 and isinstance(vals[0], list) else vals
        return value not in [norm(v) for v in flat]
    if relation in ("contains", "not_contains", "starts_with", "ends_with"):
        text, needle = str(value or "").lower(), str(first or "").lower()
        result = {
            "contains": needle in text,
            "not_contains": needle not in text,
            "starts_with": text.startswith(needle),
            "ends_with": text.endswith(needle),
        }[relation]
        return result
    if relation in ("greater_than", "less_than"):
        try:
            return value > first if relation == "greater_than" else value < first
        except TypeError:
            return False
    raise _ApiError(ERR_FAULT, f"API read() unsupported filter relation: {relation!r}")


def _matches(record: Dict[str, Any], filters: Any) -> bool:
    """Evaluate api3 ``filters`` (``{"logical_operator", "conditions"}``) against a record."""
    if not filters:
        return True
    if isinstance(filters, list):  # a bare list of conditions
        filters = {"logical_operator": "and", "conditions": filters}
    if not isinstance(filters, dict):
        raise _ApiError(ERR_FAULT, "API read() filters must be a dictionary")
    op = filters.get("logical_operator", "and")
    results: List[bool] = []
    for cond in filters.get("conditions", []):
        if isinstance(cond, dict) and "conditions" in cond:
            results.append(_matches(record, cond))
        elif isinstance(cond, dict) and "path" in cond:
            results.append(
                _match(
                    record.get(cond["path"]), cond.get("relation", "is"), cond.get("values") or []
                )
            )
        elif isinstance(cond, list) and len(cond) >= 3:
            results.append(_match(record.get(cond[0]), cond[1], cond[2:]))
        else:
            raise _ApiError(ERR_FAULT, "API read() malformed filter condition")
    return any(results) if op == "or" else all(results)


class Api3Mixin:
    """``/api3/json``: ``info``, authentication of every kind, and the RPCs."""

    def _info(self) -> Dict[str, Any]:
        return {
            "version": list(SERVER_VERSION),
            "full_version": list(FULL_VERSION),
            "s3_uploads_enabled": False,
            "api_max_entities_per_page": self.api_max_entities_per_page,
            "user_authentication_method": self.mode,
            "unified_login_flow_enabled": self.unified_login_flow,
            "authentication_app_session_launcher_enabled": self.app_session_launcher,
        }

    def _h_track_metrics(self, request: Any, ctx: _Ctx) -> Any:
        return self._json({})

    def _h_api3(self, request: Any, ctx: _Ctx) -> Any:
        from werkzeug.utils import redirect

        try:
            try:
                payload = json.loads(request.get_data(as_text=True) or "null")
            except ValueError:
                raise _ApiError(ERR_FAULT, "Malformed JSON-RPC request: invalid JSON.") from None
            if not isinstance(payload, dict) or not isinstance(payload.get("method_name"), str):
                raise _ApiError(ERR_FAULT, "Malformed JSON-RPC request: no method_name.")
            method = payload["method_name"]
            ctx.rpc = method
            params = payload.get("params") or []
            if not isinstance(params, list):
                raise _ApiError(ERR_FAULT, "Malformed JSON-RPC request: params is not a list.")
            if method == "info":
                return self._json({"results": self._info()})
            handler = getattr(self, f"_rpc_{method}", None)
            if handler is None:
                raise _ApiError(ERR_FAULT, f"Unknown method {method!r}.")
            auth = params[0] if params and isinstance(params[0], dict) else None
            args = params[1] if len(params) > 1 and isinstance(params[1], (dict, list)) else {}
            if auth is None:
                raise _ApiError(ERR_AUTH, "Can't authenticate: no credentials.")
            with self._lock:
                actor = self._authenticate_api3(auth, ctx)
                results = handler(actor, args)
            return self._json({"results": results})
        except _ApiError as exc:
            ctx.error_code = exc.code
            return self._json({"exception": True, "error_code": exc.code, "message": exc.message})
        except _Redirect as exc:
            return redirect(exc.location, code=302)

    def _authenticate_api3(self, auth: Dict[str, Any], ctx: _Ctx) -> Dict[str, Any]:
        """Check api3 auth params; returns the actor ``{"login", "is_script", "session"}``."""
        if auth.get("user_login") and auth.get("user_password"):
            login = str(auth["user_login"])
            ctx.auth, ctx.login = "password", login
            self._refuse_password_mode()
            self._check_password(login, auth["user_password"])
            self._check_2fa(login, auth.get("auth_token"))
            actor = {"login": login, "is_script": False, "session": None}
        elif auth.get("script_name") and auth.get("script_key"):
            name = str(auth["script_name"])
            ctx.auth, ctx.login = "script", name
            self._check_script(name, auth["script_key"])
            actor = {"login": name, "is_script": True, "session": None}
        elif auth.get("session_token"):
            ctx.auth = "session"
            session = self._session_for(auth["session_token"], saml_redirect=True)
            ctx.login = session.login
            actor = {
                "login": session.login,
                "is_script": session.is_script,
                "session": auth["session_token"],
            }
        else:
            raise _ApiError(ERR_AUTH, "Can't authenticate: no usable credentials.")
        sudo = auth.get("sudo_as_login")
        if sudo:
            ctx.sudo = str(sudo)
            if not actor["is_script"] and not self._user_field(
                actor["login"], "sudo_allowed", False
            ):
                raise _ApiError(
                    ERR_PERMISSION,
                    "The user does not have permission to 'sudo': "
                    f"{actor['login']} is not a script user.",
                )
            refusal = self._sudo_refusal(str(sudo))
            if refusal is not None:
                raise _ApiError(ERR_AUTH, refusal)
            actor["sudo"] = sudo
        return actor

    def _rpc_get_session_token(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        if actor["session"]:
            return {"session_id": actor["session"]}
        login = actor.get("sudo") or actor["login"]
        return {"session_id": self._new_session(login, is_script=login in self._scripts)}

    def _rpc_read(self, actor: Dict[str, Any], args: Dict[str, Any]) -> Any:
        entity_type = str(args.get("type"))
        records = self._records(entity_type)
        if entity_type == "Project":  # per person: the acting person's last access
            person = actor.get("sudo") or actor["login"]
            for record in records:
                record["last_accessed_by_current_user"] = self._last_accessed.get(
                    (person, record["id"])
                )
        records = [r for r in records if _matches(r, args.get("filters"))]
        fields = args.get("return_fields") or ["id"]
        paging = args.get("paging") or {}
        try:
            per_page = max(
                1, min(int(paging.get("entities_per_page") or 500), self.api_max_entities_per_page)
            )
            page = max(1, int(paging.get("current_page") or 1))
        except (TypeError, ValueError):
            raise _ApiError(ERR_FAULT, "API read() invalid paging.") from None
        chunk = records[(page - 1) * per_page : page * per_page]
        entities = [
            {
                "type": r["type"],
                "id": r["id"],
                **{f: r.get(f) for f in fields if f not in ("type", "id")},
            }
            for r in chunk
        ]
        return {
            "entities": entities,
            "paging_info": {
                "has_next_page": page * per_page < len(records),
                "entity_count": len(records),
                "current_page": page,
                "entities_per_page": per_page,
                "page_count": max(1, -(-len(records) // per_page)),
            },
        }
