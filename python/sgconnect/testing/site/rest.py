"""A slice of the REST API (``/api/v1``): token minting with every grant, and entity reads and
writes (create, update, delete, revive) on the same store as api3."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, Optional, Tuple
from urllib.parse import parse_qsl

from .common import (
    ENTITY_TYPES,
    ERR_AUTH,
    SHOTGUN_VERSION_STRING,
    SITE_ID,
    ApiError,
    Ctx,
    RestError,
    json_response,
    jwt_shaped,
    rest_error_response,
)
from .entities import create_entity, delete_entity, revive_entity, update_entity
from .state import RestToken, Session

#: Grant fields that are secrets: never accepted from a URL query string.
_SECRET_FIELDS = ("client_secret", "password", "session_token", "refresh_token", "auth_token")
#: A session's expiry is written at most this often (seconds) when minting from it.
_SESSION_WRITE_INTERVAL = 300


class RestMixin:
    """``/api/v1``: the root, ``auth/access_token`` and entity collections."""

    def _h_rest_root(self, request: Any, ctx: Ctx) -> Any:
        version = request.environ.get("sgconnect.api_version", "1.0")
        prefix = "/api/v1.1" if version == "1.1" else "/api/v1"
        return json_response(
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

    def _h_web_session(self, request: Any, ctx: Ctx) -> Any:
        """``/internal_api/session`` with the ``_session_id`` cookie: the browser session's
        times (``POST`` extends it first); without a valid cookie, 401."""
        token = request.cookies.get("_session_id")
        with self.state.lock:
            try:
                session = self.state.session_for(token, saml_redirect=False)
            except ApiError:
                return json_response({"message": "Unauthorized"}, 401)
            ctx.auth, ctx.login = "cookie", session.login
            if request.method == "POST":
                session.expires_at = time.time() + self.session_lifetime
                session.written_at = time.time()
            created, expires = session.created_at, session.expires_at

        def iso(moment: float) -> str:
            return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")

        return json_response(
            {
                "app": {"createdAt": iso(created), "expiresAt": iso(expires)},
                "expired": False,
                "expiresAt": iso(expires),
            }
        )

    def _h_rest_token(self, request: Any, ctx: Ctx) -> Any:
        try:
            fields = self._token_fields(request)
            with self.state.lock:
                login, is_script, sudo, auth_type, session = self._rest_grant(fields, ctx)
                now = int(time.time())
                if is_script:
                    user = {"type": "ApiUser", "id": self.state.scripts[login].id}
                else:
                    user = {"type": "HumanUser", "id": self.state.users[login].id}
                access = jwt_shaped(
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
                token = RestToken(login, is_script, sudo, time.time() + self.rest_token_lifetime)
                self.state.rest_tokens[access] = token
                self.state.refresh_tokens[refresh] = RestToken(login, is_script, sudo, float("inf"))
                self.state.secrets.update((access, refresh))
                self.state.mint_count += 1
        except RestError as exc:
            return rest_error_response(exc)
        return json_response(
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
                raise RestError(
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
            raise RestError(
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
        self, fields: Dict[str, str], ctx: Ctx
    ) -> Tuple[str, bool, Optional[str], str, Optional[Session]]:
        """Check a token request (locked); returns ``(login, is_script, sudo, auth_type,
        session)``. Statuses, codes and words follow a real site (docs/local-site-contract.md)."""
        grant = fields.get("grant_type", "")
        scope = fields.get("scope", "")
        session = None
        missing = RestError(400, 103, "Bad Request", "Missing or invalid authentication arguments")
        if grant == "password":
            login = fields.get("username", "")
            ctx.auth, ctx.login = "password", login or None
            if not login or not fields.get("password"):
                raise missing
            try:
                self.state.refuse_password_mode()
                self.state.check_password(login, fields.get("password", ""))
                self.state.check_2fa(login, fields.get("auth_token"))
            except ApiError as exc:
                raise RestError(
                    401 if exc.code == ERR_AUTH else 400, exc.code, "Unauthorized", exc.message
                ) from None
            principal, auth_type = (login, False), "password"
        elif grant == "client_credentials":
            name = fields.get("client_id", "")
            ctx.auth, ctx.login = "script", name or None
            if not name or not fields.get("client_secret"):
                raise missing
            try:
                self.state.check_script(name, fields.get("client_secret", ""))
            except ApiError:
                raise RestError(
                    400, ERR_AUTH, "Bad Request", f"Can't authenticate script '{name}'"
                ) from None
            principal, auth_type = (name, True), "api_key"
        elif grant == "session_token":
            ctx.auth = "session"
            token = fields.get("session_token", "")
            if not token:
                raise missing
            try:
                session = self.state.session_for(token, saml_redirect=False)
                if session.claims_expire_at is not None and session.claims_expire_at <= time.time():
                    raise ApiError(ERR_AUTH, "SSO claims expired.")
            except ApiError:
                raise RestError(
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
            refreshed = self.state.refresh_tokens.get(fields.get("refresh_token", ""))
            if refreshed is None:
                raise RestError(401, ERR_AUTH, "Unauthorized", "Unauthorized")
            ctx.login, ctx.sudo = refreshed.login, refreshed.sudo
            return refreshed.login, refreshed.is_script, refreshed.sudo, "refresh_token", None
        else:
            raise RestError(
                400,
                103,
                "Unsupported grant_type",
                f"grant_type must be password, client_credentials, session_token or "
                f"refresh_token, not {grant!r}",
            )
        sudo = None
        if scope:
            if not scope.startswith("sudo_as_login:"):
                raise RestError(400, 103, "Bad Request", f"Invalid scope: {scope!r}")
            sudo = scope.split(":", 1)[1]
            ctx.sudo = sudo
            if not principal[1]:
                raise RestError(
                    400,
                    ERR_AUTH,
                    "Bad Request",
                    "The user does not have permission to 'sudo': only script users may",
                )
            refusal = self.state.sudo_refusal(sudo)
            if refusal is not None:
                raise RestError(400, ERR_AUTH, "Bad Request", refusal)
        return principal[0], principal[1], sudo, auth_type, session

    def _bearer(self, request: Any, ctx: Ctx) -> RestToken:
        ctx.auth = "bearer"
        header = request.headers.get("Authorization", "")
        token_text = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with self.state.lock:
            token = self.state.rest_tokens.get(token_text)
            if token is None or token.expires_at <= time.time():
                raise RestError(
                    401, ERR_AUTH, "Unauthorized", "The access token is unknown or has expired."
                )
        ctx.login, ctx.sudo = token.login, token.sudo
        return token

    def _rest_actor(self, request: Any, ctx: Ctx) -> Dict[str, Any]:
        """The Bearer token's actor, in api3's shape (``login``, ``is_script``, ``sudo``)."""
        token = self._bearer(request, ctx)
        return {"login": token.login, "is_script": token.is_script, "sudo": token.sudo}

    def _rest_record(self, record: Dict[str, Any]) -> Dict[str, Any]:
        """A record in the REST shape: entity links under ``relationships``, the rest under
        ``attributes``."""
        attributes, relationships = {}, {}
        for name, value in record.items():
            if name in ("type", "id"):
                continue
            if isinstance(value, dict) and "type" in value and "id" in value:
                link = f"/api/v1/entity/{collection_name(value['type'])}/{value['id']}"
                relationships[name] = {"data": value, "links": {"related": link}}
            else:
                attributes[name] = value
        return {
            "type": record["type"],
            "attributes": attributes,
            "relationships": relationships,
            "id": record["id"],
            "links": {"self": f"/api/v1/entity/{collection_name(record['type'])}/{record['id']}"},
        }

    def _h_rest_collection(self, request: Any, ctx: Ctx, collection: str) -> Any:
        try:
            actor = self._rest_actor(request, ctx)
            entity_type = collection_type(collection)
            if request.method == "POST":
                data = _write_body(request, "create", entity_type, creating=True)
                with self.state.lock:
                    try:
                        created = create_entity(self.state, actor, entity_type, data, [])
                    except ApiError as exc:
                        raise RestError(400, exc.code, "Bad Request", exc.message) from None
                    record = self.state.find_record(entity_type, created["id"]) or created
                return json_response({"data": self._rest_record(record)}, 201)
            try:
                number = max(1, int(request.args.get("page[number]", 1)))
                size = max(1, min(int(request.args.get("page[size]", 20)), 500))
            except ValueError:
                raise RestError(400, 103, "Bad request", "invalid page parameters") from None
            with self.state.lock:
                records = self.state.records(entity_type)
            chunk = records[(number - 1) * size : number * size]
            base = f"/api/v1/entity/{collection}"
            links: Dict[str, Any] = {"self": f"{base}?page[number]={number}&page[size]={size}"}
            if number * size < len(records):
                links["next"] = f"{base}?page[number]={number + 1}&page[size]={size}"
            if number > 1:
                links["prev"] = f"{base}?page[number]={number - 1}&page[size]={size}"
            return json_response({"data": [self._rest_record(r) for r in chunk], "links": links})
        except RestError as exc:
            return rest_error_response(exc)

    def _h_rest_entity(self, request: Any, ctx: Ctx, collection: str, entity_id: int) -> Any:
        """One record: ``GET``, ``PATCH`` (200 with the record), ``DELETE`` (204, no body) and
        ``POST ?revive=true`` (200 with the record)."""
        try:
            actor = self._rest_actor(request, ctx)
            entity_type = collection_type(collection)
            missing = RestError(
                404, 103, "Record not found", f"{entity_type} with id {entity_id} not found"
            )
            if request.method == "POST" and request.args.get("revive") != "true":
                raise RestError(405, 103, "Method Not Allowed", "POST a record only to revive it")
            data = (
                _write_body(request, "update", entity_type, creating=False)
                if request.method == "PATCH"
                else {}
            )
            with self.state.lock:
                try:
                    if request.method == "DELETE":
                        if not delete_entity(self.state, entity_type, entity_id):
                            raise missing
                        from werkzeug.wrappers import Response

                        gone = Response(status=204)
                        del gone.headers["Content-Type"]  # 204: no body, no type
                        return gone
                    if request.method == "POST" and not revive_entity(
                        self.state, entity_type, entity_id
                    ):
                        raise missing
                    if self.state.find_record(entity_type, entity_id) is None:
                        raise missing
                    if request.method == "PATCH":
                        args = {"type": entity_type, "id": entity_id, "fields": data}
                        update_entity(self.state, actor, args)
                except ApiError as exc:
                    raise RestError(400, exc.code, "Bad Request", exc.message) from None
                record = self.state.find_record(entity_type, entity_id) or {}
            return json_response({"data": self._rest_record(record)})
        except RestError as exc:
            return rest_error_response(exc)


#: A written field's name (a real site's field names are lower-case identifiers).
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
#: Fields the site sets itself: a write naming one is refused.
_READ_ONLY = ("id", "type", "created_at", "updated_at", "created_by", "updated_by")


def collection_name(entity_type: str) -> str:
    """The REST collection of an entity type: ``HumanUser`` -> ``human_users``."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", entity_type).lower()
    return snake[:-1] + "ies" if snake.endswith("y") else snake + "s"


def collection_type(collection: str) -> str:
    """The entity type of a REST collection (``projects``, ``human_users``) or of its own
    name (``Project``).

    :raises RestError: 404, code 103, an entity type the site does not know.
    """
    for entity_type in ENTITY_TYPES:
        if collection in (entity_type, collection_name(entity_type)):
            return entity_type
    raise RestError(404, 103, "Not Found", f"Entity type {collection!r} does not exist")


def _field_error(status: int, title: str, detail: str, field: str) -> RestError:
    error = RestError(status, 103, title, detail)
    error.source = {"pointer": f"/{field}"}
    return error


def _write_body(request: Any, what: str, entity_type: str, *, creating: bool) -> Dict[str, Any]:
    """The fields of a ``POST``/``PATCH`` body: a JSON object ``{field: value}``, as a real
    site takes it.

    :raises RestError: 400, code 103, a body that is not a JSON object, a field name that is not
        one (``source.pointer`` names it), or a read-only field.
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or (not body and not creating):
        raise RestError(
            400, 103, "Bad Request", f"API {what}() needs a JSON object of fields to write"
        )
    for field in body:
        if not isinstance(field, str) or not _FIELD_NAME.match(field):
            raise _field_error(
                400, "Bad Request", f"{entity_type}.{field} doesn't exist", str(field)
            )
        if field in _READ_ONLY:
            raise _field_error(400, "Bad Request", f"{entity_type}.{field} is read-only", field)
    return body
