"""A slice of the REST API (``/api/v1``): token minting with every grant, and a few collections."""

from __future__ import annotations

import secrets
import time
from typing import Any, Dict, Optional, Tuple

from .common import (
    ERR_AUTH,
    ERR_PERMISSION,
    SERVER_VERSION,
    _ApiError,
    _Ctx,
    _json_response,
    _jwt_shaped,
    _RestError,
)
from .state import _RestToken


class RestMixin:
    """``/api/v1``: the root, ``auth/access_token`` and entity collections."""

    @staticmethod
    def _rest_error(exc: _RestError) -> Any:
        return _json_response(
            {
                "errors": [
                    {
                        "id": secrets.token_hex(8),
                        "status": exc.status,
                        "code": exc.code,
                        "title": exc.title,
                        "detail": exc.detail,
                        "source": {},
                        "meta": {},
                    }
                ]
            },
            exc.status,
        )

    def _h_rest_root(self, request: Any, ctx: _Ctx) -> Any:
        return self._json(
            {
                "data": {
                    "shotgun_version": ".".join(str(v) for v in SERVER_VERSION),
                    "api_version": "v1.1",
                    "unified_login_flow_enabled": self.unified_login_flow,
                    "user_authentication_method": self.mode,
                    "authentication_app_session_launcher_enabled": self.app_session_launcher,
                },
                "links": {"self": "/api/v1"},
            }
        )

    def _h_rest_token(self, request: Any, ctx: _Ctx) -> Any:
        fields = request.form.copy()  # the body wins; the query is accepted too
        for key, value in request.args.items():
            fields.setdefault(key, value)
        try:
            with self._lock:
                login, is_script, sudo = self._rest_grant(fields, ctx)
                access = _jwt_shaped(
                    {
                        "sub": login,
                        "jti": secrets.token_hex(8),
                        "exp": int(time.time()) + self.rest_token_lifetime,
                    }
                )
                refresh = secrets.token_urlsafe(32)
                token = _RestToken(login, is_script, sudo, time.time() + self.rest_token_lifetime)
                self._rest_tokens[access] = token
                self._refresh_tokens[refresh] = _RestToken(login, is_script, sudo, float("inf"))
                self._secrets.update((access, refresh))
                self._mint_count += 1
        except _RestError as exc:
            return self._rest_error(exc)
        return self._json(
            {
                "token_type": "Bearer",
                "access_token": access,
                "expires_in": self.rest_token_lifetime,
                "refresh_token": refresh,
            }
        )

    def _rest_grant(self, fields: Any, ctx: _Ctx) -> Tuple[str, bool, Optional[str]]:
        """Check a token request; returns ``(login, is_script, sudo)``. Called locked."""
        grant = fields.get("grant_type", "")
        scope = fields.get("scope", "")
        try:
            if grant == "password":
                login = fields.get("username", "")
                ctx.auth, ctx.login = "password", login or None
                self._refuse_password_mode()
                self._check_password(login, fields.get("password", ""))
                self._check_2fa(login, fields.get("auth_token"))
                principal = (login, False)
            elif grant == "client_credentials":
                name = fields.get("client_id", "")
                ctx.auth, ctx.login = "script", name or None
                self._check_script(name, fields.get("client_secret", ""))
                principal = (name, True)
            elif grant == "session_token":
                ctx.auth = "session"
                token = fields.get("session_token", "")
                session = self._session_for(token, saml_redirect=False)
                if session.claims_expire_at is not None and session.claims_expire_at <= time.time():
                    raise _ApiError(ERR_AUTH, "SSO claims expired.")
                session.expires_at = max(session.expires_at, time.time() + self.session_lifetime)
                ctx.login = session.login
                principal = (session.login, session.is_script)
            elif grant == "refresh_token":
                ctx.auth = "bearer"
                refreshed = self._refresh_tokens.get(fields.get("refresh_token", ""))
                if refreshed is None:
                    raise _RestError(400, ERR_AUTH, "Invalid refresh token")
                ctx.login, ctx.sudo = refreshed.login, refreshed.sudo
                return refreshed.login, refreshed.is_script, refreshed.sudo
            else:
                raise _RestError(
                    400,
                    103,
                    "Unsupported grant type",
                    f"grant_type must be password, client_credentials, "
                    f"session_token or refresh_token, not {grant!r}",
                )
        except _ApiError as exc:
            raise _RestError(
                401 if exc.code == ERR_AUTH else 400, exc.code, "Authentication failed", exc.message
            ) from None
        sudo = None
        if scope:
            if not scope.startswith("sudo_as_login:"):
                raise _RestError(400, 103, "Invalid scope")
            sudo = scope.split(":", 1)[1]
            ctx.sudo = sudo
            if not principal[1]:
                raise _RestError(
                    403,
                    ERR_PERMISSION,
                    "Forbidden",
                    "sudo_as_login is only allowed for script users",
                )
            if sudo not in self._users:
                raise _RestError(400, ERR_AUTH, "Invalid scope", f"no user with login {sudo!r}")
        return principal[0], principal[1], sudo

    def _bearer(self, request: Any, ctx: _Ctx) -> _RestToken:
        ctx.auth = "bearer"
        header = request.headers.get("Authorization", "")
        token_text = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with self._lock:
            token = self._rest_tokens.get(token_text)
            if token is None or token.expires_at <= time.time():
                raise _RestError(
                    401, ERR_AUTH, "Unauthorized", "The access token is unknown or has expired."
                )
        ctx.login, ctx.sudo = token.login, token.sudo
        return token

    _COLLECTIONS = {"projects": "Project", "human_users": "HumanUser", "api_users": "ApiUser"}

    def _rest_record(self, record: Dict[str, Any], collection: str) -> Dict[str, Any]:
        attributes = {k: v for k, v in record.items() if k not in ("type", "id")}
        return {
            "type": record["type"],
            "attributes": attributes,
            "relationships": {},
            "id": record["id"],
            "links": {"self": f"/api/v1/entity/{collection}/{record['id']}"},
        }

    def _h_rest_collection(self, request: Any, ctx: _Ctx, collection: str) -> Any:
        try:
            self._bearer(request, ctx)
            entity_type = self._COLLECTIONS.get(collection)
            if entity_type is None:
                raise _RestError(404, 103, "Not found", f"unknown entity type {collection!r}")
            if request.method == "POST":
                if entity_type != "Project":
                    raise _RestError(403, ERR_PERMISSION, "Forbidden")
                body = request.get_json(silent=True) or {}
                name = body.get("name") or (body.get("data") or {}).get("name")
                if not isinstance(name, str) or not name:
                    raise _RestError(400, 103, "Bad request", "a project needs a name")
                with self._lock:
                    record = dict(self._add_project(name))
                return self._json({"data": self._rest_record(record, collection)}, 201)
            try:
                number = max(1, int(request.args.get("page[number]", 1)))
                size = max(1, min(int(request.args.get("page[size]", 20)), 500))
            except ValueError:
                raise _RestError(400, 103, "Bad request", "invalid page parameters") from None
            with self._lock:
                records = self._records(entity_type)
            chunk = records[(number - 1) * size : number * size]
            base = f"/api/v1/entity/{collection}"
            links: Dict[str, Any] = {"self": f"{base}?page[number]={number}&page[size]={size}"}
            if number * size < len(records):
                links["next"] = f"{base}?page[number]={number + 1}&page[size]={size}"
            if number > 1:
                links["prev"] = f"{base}?page[number]={number - 1}&page[size]={size}"
            return self._json(
                {"data": [self._rest_record(r, collection) for r in chunk], "links": links}
            )
        except _RestError as exc:
            return self._rest_error(exc)

    def _h_rest_entity(self, request: Any, ctx: _Ctx, collection: str, entity_id: int) -> Any:
        try:
            self._bearer(request, ctx)
            entity_type = self._COLLECTIONS.get(collection)
            with self._lock:
                records = self._records(entity_type) if entity_type else []
            for record in records:
                if record["id"] == entity_id:
                    return self._json({"data": self._rest_record(record, collection)})
            raise _RestError(404, 103, "Not found", f"no {collection} with id {entity_id}")
        except _RestError as exc:
            return self._rest_error(exc)
