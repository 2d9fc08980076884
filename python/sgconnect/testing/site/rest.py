"""A slice of the REST API (``/api/v1``): token minting with every grant, and a few collections."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, Optional, Tuple
from urllib.parse import parse_qsl

from .common import (
    ERR_AUTH,
    ERR_PERMISSION,
    SHOTGUN_VERSION_STRING,
    SITE_ID,
    _ApiError,
    _Ctx,
    _json_response,
    _jwt_shaped,
    _RestError,
)
from .state import _RestToken, _Session

#: Grant fields that are secrets: never accepted from a URL query string.
_SECRET_FIELDS = ("client_secret", "password", "session_token", "refresh_token", "auth_token")
#: A session's expiry is written at most this often (seconds) when minting from it.
_SESSION_WRITE_INTERVAL = 300


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
        version = request.environ.get("sgconnect.api_version", "1.0")
        prefix = "/api/v1.1" if version == "1.1" else "/api/v1"
        return self._json(
            {
                "data": {
                    "shotgun_version": SHOTGUN_VERSION_STRING,
                    "api_version": version,
                    "site_id": SITE_ID,
                    "site_name": "127.0.0.1",
                    "os": "linux",
                    "user_authentication_method": self.mode,
                    "unified_login_flow_enabled": self.unified_login_flow,
                    "authentication_app_session_launcher_enabled": self.app_session_launcher,
                },
                "links": {"self": prefix},
            }
        )

    def _h_rest_unknown(self, request: Any, ctx: _Ctx, **_: Any) -> Any:
        """``/api/v2``, ``/api/v1.2``... and unknown paths: 404, code 103."""
        return self._rest_error(_RestError(404, 103, "Not Found", "Not Found"))

    def _h_web_session(self, request: Any, ctx: _Ctx) -> Any:
        """``/internal_api/session`` with the ``_session_id`` cookie: the browser session's
        times (``POST`` extends it first); without a valid cookie, 401."""
        token = request.cookies.get("_session_id")
        with self._lock:
            try:
                session = self._session_for(token, saml_redirect=False)
            except _ApiError:
                return self._json({"message": "Unauthorized"}, 401)
            ctx.auth, ctx.login = "cookie", session.login
            if request.method == "POST":
                session.expires_at = time.time() + self.session_lifetime
                session.written_at = time.time()
            created, expires = session.created_at, session.expires_at

        def iso(moment: float) -> str:
            return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")

        return self._json(
            {
                "app": {"createdAt": iso(created), "expiresAt": iso(expires)},
                "expired": False,
                "expiresAt": iso(expires),
            }
        )

    def _h_rest_token(self, request: Any, ctx: _Ctx) -> Any:
        try:
            fields = self._token_fields(request)
            with self._lock:
                login, is_script, sudo, auth_type, session = self._rest_grant(fields, ctx)
                now = int(time.time())
                if is_script:
                    user = {"type": "ApiUser", "id": self._scripts[login].id}
                else:
                    user = {"type": "HumanUser", "id": self._users[login].id}
                access = _jwt_shaped(
                    {
                        "iss": self.url,
                        "aud": self.url + "/api/v1",
                        "iat": now,
                        "exp": now + self.rest_token_lifetime,
                        "jti": str(uuid.uuid4()),
                        "user": user,
                        "sudo_as_login": sudo,
                        "auth_type": auth_type,
                        "session_uuid": session.uuid if session is not None else None,
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

    def _token_fields(self, request: Any) -> Dict[str, str]:
        """The token request's fields: a form body (any form type, charset ignored, or no
        Content-Type at all); ``text/plain`` is a 415, JSON is not read; secrets in the URL query
        string are refused."""
        for name in _SECRET_FIELDS:
            if name in request.args:
                raise _RestError(
                    400,
                    103,
                    "Credentials in the URL query string are refused",
                    f"send {name} in the form body, never in the URL",
                )
        mime = request.mimetype  # lower case, parameters (charset) dropped
        if mime in ("application/x-www-form-urlencoded", "multipart/form-data"):
            fields = dict(request.form.items())
        elif not mime:
            fields = dict(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
        elif mime == "text/plain":
            raise _RestError(
                415,
                103,
                "Unsupported Media Type",
                "Content-Type must be application/x-www-form-urlencoded",
            )
        else:  # JSON and the rest: the body is not read as the grant's arguments
            fields = {}
        for key, value in request.args.items():
            fields.setdefault(key, value)  # grant_type and scope may come in the query
        return fields

    def _rest_grant(
        self, fields: Dict[str, str], ctx: _Ctx
    ) -> Tuple[str, bool, Optional[str], str, Optional[_Session]]:
        """Check a token request (locked); returns ``(login, is_script, sudo, auth_type,
        session)``. Statuses, codes and words follow a real site (docs/local-site-contract.md)."""
        grant = fields.get("grant_type", "")
        scope = fields.get("scope", "")
        session = None
        missing = _RestError(400, 103, "Bad Request", "Missing or invalid authentication arguments")
        if grant == "password":
            login = fields.get("username", "")
            ctx.auth, ctx.login = "password", login or None
            if not login or not fields.get("password"):
                raise missing
            try:
                self._refuse_password_mode()
                self._check_password(login, fields.get("password", ""))
                self._check_2fa(login, fields.get("auth_token"))
            except _ApiError as exc:
                raise _RestError(
                    401 if exc.code == ERR_AUTH else 400, exc.code, "Unauthorized", exc.message
                ) from None
            principal, auth_type = (login, False), "password"
        elif grant == "client_credentials":
            name = fields.get("client_id", "")
            ctx.auth, ctx.login = "script", name or None
            if not name or not fields.get("client_secret"):
                raise missing
            try:
                self._check_script(name, fields.get("client_secret", ""))
            except _ApiError:
                raise _RestError(
                    400, ERR_AUTH, "Bad Request", f"Can't authenticate script '{name}'"
                ) from None
            principal, auth_type = (name, True), "api_key"
        elif grant == "session_token":
            ctx.auth = "session"
            token = fields.get("session_token", "")
            if not token:
                raise missing
            try:
                session = self._session_for(token, saml_redirect=False)
                if session.claims_expire_at is not None and session.claims_expire_at <= time.time():
                    raise _ApiError(ERR_AUTH, "SSO claims expired.")
            except _ApiError:
                raise _RestError(
                    400,
                    ERR_AUTH,
                    "Bad Request",
                    f"Can't authenticate session token ending with '{token[-4:]}'",
                ) from None
            now = time.time()
            if now - session.written_at >= _SESSION_WRITE_INTERVAL:
                session.expires_at = max(session.expires_at, now + self.session_lifetime)
                session.written_at = now
            ctx.login = session.login
            principal, auth_type = (session.login, session.is_script), "session_token"
        elif grant == "refresh_token":
            ctx.auth = "bearer"
            refreshed = self._refresh_tokens.get(fields.get("refresh_token", ""))
            if refreshed is None:
                raise _RestError(401, ERR_AUTH, "Unauthorized", "Unauthorized")
            ctx.login, ctx.sudo = refreshed.login, refreshed.sudo
            return refreshed.login, refreshed.is_script, refreshed.sudo, "refresh_token", None
        else:
            raise _RestError(
                400,
                103,
                "Unsupported grant_type",
                f"grant_type must be password, client_credentials, session_token or "
                f"refresh_token, not {grant!r}",
            )
        sudo = None
        if scope:
            if not scope.startswith("sudo_as_login:"):
                raise _RestError(400, 103, "Bad Request", f"Invalid scope: {scope!r}")
            sudo = scope.split(":", 1)[1]
            ctx.sudo = sudo
            if not principal[1]:
                raise _RestError(
                    400,
                    ERR_AUTH,
                    "Bad Request",
                    "The user does not have permission to 'sudo': only script users may",
                )
            refusal = self._sudo_refusal(sudo)
            if refusal is not None:
                raise _RestError(400, ERR_AUTH, "Bad Request", refusal)
        return principal[0], principal[1], sudo, auth_type, session

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
