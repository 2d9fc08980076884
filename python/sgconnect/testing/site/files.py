"""Uploads and downloads: ``/upload/publish_thumbnail``, ``/upload/upload_file`` (the
multipart forms shotgun_api3 posts when ``s3_uploads_enabled`` is false) and
``/file_serve/attachment/<id>``.

An upload is authenticated by the api3 auth fields in the form (script name and key, login and
password, session token, ``sudo_as_login``) or the ``_session_id`` cookie; a download by the
``_session_id`` cookie (what shotgun_api3's ``download_attachment`` sends). A thumbnail's
``image`` field points at ``/images/status/transient/<id>``, as a real site's does while it
processes the image; that URL serves the uploaded bytes.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .common import _ApiError, _Ctx, _Redirect
from .entities import _now

_AUTH_FIELDS = (
    "script_name",
    "script_key",
    "user_login",
    "user_password",
    "auth_token",
    "session_token",
    "sudo_as_login",
)


class FilesMixin:
    """Attachments: uploaded bytes kept in memory, per site."""

    def _upload_actor(self, request: Any, ctx: _Ctx) -> Optional[Dict[str, Any]]:
        auth = {k: request.form[k] for k in _AUTH_FIELDS if request.form.get(k)}
        if not auth and request.cookies.get("_session_id"):
            auth = {"session_token": request.cookies["_session_id"]}
        try:
            return self._authenticate_api3(auth, ctx)
        except (_ApiError, _Redirect):
            return None

    def _h_upload(self, request: Any, ctx: _Ctx, kind: str) -> Any:
        from werkzeug.wrappers import Response

        with self._lock:
            actor = self._upload_actor(request, ctx)
        if actor is None:
            return Response("0:Can't authenticate the upload.\n", 403, mimetype="text/plain")
        entity_type = request.form.get("entity_type", "")
        try:
            entity_id = int(request.form.get("entity_id") or 0)
        except ValueError:
            entity_id = 0
        upload = request.files.get("thumb_image" if kind == "publish_thumbnail" else "file")
        if upload is None:
            return Response("0:No file in the upload.\n", 400, mimetype="text/plain")
        content = upload.read()
        if not content:
            return Response("0:The file is empty.\n", 400, mimetype="text/plain")
        name = request.form.get("display_name") or upload.filename or "upload"
        content_type = upload.mimetype or "application/octet-stream"
        with self._lock:
            entity = self._find_record(entity_type, entity_id) if entity_type else None
            if entity_type and entity is None:
                return Response(
                    f"0:{entity_type} {entity_id} does not exist.\n", 404, mimetype="text/plain"
                )
            person = self._person_ref(actor)
            table = self._table("Attachment")
            attachment_id = max(list(table) + [0]) + 1
            this_file = {
                "type": "Attachment",
                "id": attachment_id,
                "name": name,
                "content_type": content_type,
                "link_type": "upload",
                "url": f"{self.url}/file_serve/attachment/{attachment_id}",
            }
            table[attachment_id] = {
                "type": "Attachment",
                "id": attachment_id,
                "this_file": this_file,
                "filename": name,
                "file_size": len(content),
                "attachment_links": [{"type": entity_type, "id": entity_id}] if entity else [],
                "created_by": person,
                "created_at": _now(),
            }
            self._files[attachment_id] = (content, content_type, name)
            if entity is not None:
                if kind == "publish_thumbnail":
                    field = "filmstrip_image" if request.form.get("filmstrip") else "image"
                    value: Any = f"{self.url}/images/status/transient/{attachment_id}"
                else:
                    field = request.form.get("field_name") or ""
                    value = this_file
                if field:
                    self._rpc_update(
                        actor, {"type": entity_type, "id": entity_id, "fields": {field: value}}
                    )
        return Response(f"1:{attachment_id}\n", 200, mimetype="text/plain")

    def _h_file_serve(self, request: Any, ctx: _Ctx, attachment_id: int) -> Any:
        from werkzeug.wrappers import Response

        login = self._browser_login(request, ctx)
        if login is None:
            with self._lock:
                token = request.cookies.get("_session_id")
                try:
                    session = self._session_for(token, saml_redirect=False)
                except _ApiError:
                    return self._json({"message": "Unauthorized"}, 401)
                ctx.auth, ctx.login = "cookie", session.login
        stored = self._files.get(attachment_id)
        if stored is None:
            return self._json({"message": "Not Found"}, 404)
        content, content_type, name = stored
        response = Response(content, 200, mimetype=content_type)
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def _h_transient_image(self, request: Any, ctx: _Ctx, attachment_id: int) -> Any:
        from werkzeug.wrappers import Response

        stored = self._files.get(attachment_id)
        if stored is None:
            return self._json({"message": "Not Found"}, 404)
        content, content_type, _ = stored
        if not content_type.startswith("image/"):
            content_type = "image/jpeg"
        return Response(content, 200, mimetype=content_type)
