"""The app session launcher (``/internal_api/app_session_request``) and its approval page."""

from __future__ import annotations

import secrets
import time
from html import escape
from typing import Any, List, Optional
from urllib.parse import urlencode

from .common import Ctx, html_response, json_response, rest_not_found
from .weblogin import browser_login


class AppSessionRequest:
    """One app session request: who asked (app, machine), when, and how far it got."""

    __slots__ = ("app_name", "machine_id", "created", "state", "login", "token")

    def __init__(self, app_name: str, machine_id: str, created: float):
        self.app_name = app_name
        self.machine_id = machine_id
        self.created = created
        self.state = "pending"  # pending | approved | delivered | denied
        self.login: Optional[str] = None
        self.token: Optional[str] = None


class AppSessionMixin:
    """App session requests: create, poll, approve or deny in a browser."""

    def pending_app_session_requests(self) -> List[str]:
        """The ids of the app session requests awaiting approval, oldest first."""
        with self.state.lock:
            now = time.time()
            return [
                rid
                for rid, req in self.state.app_requests.items()
                if req.state == "pending" and now - req.created < self.app_session_request_lifetime
            ]

    def approve_app_session(self, request_id: str, login: str) -> None:
        """Approve a request as ``login`` would in a browser with a session on the site."""
        with self.state.lock:
            if login not in self.state.users:
                raise KeyError(f"no user {login!r} on this site")
            req = self._live_app_request(request_id)
            if req is None or req.state != "pending":
                raise KeyError(f"no pending app session request {request_id!r}")
            req.state = "approved"
            req.login = login
            req.token = self.state.new_session(login)

    def deny_app_session(self, request_id: str) -> None:
        """Deny a request as a person in a browser would; its next poll answers 404."""
        with self.state.lock:
            req = self._live_app_request(request_id)
            if req is None or req.state != "pending":
                raise KeyError(f"no pending app session request {request_id!r}")
            req.state = "denied"

    def _live_app_request(self, request_id: str) -> Optional[AppSessionRequest]:
        req = self.state.app_requests.get(request_id)
        if req is None or time.time() - req.created >= self.app_session_request_lifetime:
            return None
        return req

    def _h_asl_create(self, request: Any, ctx: Ctx) -> Any:
        if not self.app_session_launcher:
            return json_response(
                {"message": "The app session launcher is disabled on this site."}, 403
            )
        if request.mimetype == "application/json":
            body = request.get_json(silent=True)
            params = body if isinstance(body, dict) else {}
        else:
            params = request.form
        app_name = str(params.get("appName") or "")
        machine_id = str(params.get("machineId") or "")
        pairs = (("appName", app_name), ("machineId", machine_id))
        missing = [name for name, value in pairs if not value]
        if missing:
            return json_response({"message": f"Missing params: {', '.join(missing)}"}, 400)
        with self.state.lock:
            request_id = secrets.token_hex(16)
            self.state.app_requests[request_id] = AppSessionRequest(
                app_name, machine_id, time.time()
            )
        url = f"{self.url}/app_session_request/{request_id}?sticky_id={request_id}"
        return json_response({"sessionRequestId": request_id, "url": url})

    def _h_asl_poll(self, request: Any, ctx: Ctx, request_id: str) -> Any:
        with self.state.lock:
            req = self._live_app_request(request_id)
            if req is None or req.state in ("denied", "delivered"):
                return json_response({"message": "Not Found"}, 404)
            if req.state == "pending":
                return json_response({"approved": False})
            req.state = "delivered"
            ctx.login = req.login
            user_login = req.login
            if self.mode == "oxygen":  # an Autodesk Identity site answers the person's email
                spec = self.state.users[req.login]
                user_login = spec.email or f"{spec.login}@example.com"
            return json_response(
                {"approved": True, "sessionToken": req.token, "userLogin": user_login}
            )

    def _h_asl_get(self, request: Any, ctx: Ctx, request_id: str = "") -> Any:
        """``GET`` on the app session endpoints: 404 with the JSON:API error envelope."""
        return rest_not_found()

    def _h_asl_page(self, request: Any, ctx: Ctx, request_id: str) -> Any:
        login = browser_login(self.state, request, ctx)
        with self.state.lock:
            req = self._live_app_request(request_id)
            if req is None or req.state != "pending":
                return html_response(
                    "Unknown request", "<p id='error'>This request is unknown or expired.</p>", 404
                )
            app_name, machine = req.app_name, req.machine_id
        if login is None and self.approval_sign_in == "redirect":
            # a real site sends the person to sign in, then back here
            from werkzeug.utils import redirect

            back = urlencode({"return_path": f"/app_session_request/{request_id}"})
            return redirect(f"{self.url}/user/login?{back}", code=302)
        if login is None:  # "page": this emulator's older sign-in page
            link = f"{self.url}/auth/renew"
            return html_response(
                "Sign in first",
                f"<p id='error'>Sign in to the site first: <a id='signin' href='{link}'>"
                "sign in</a>, then reload this page.</p>",
                401,
            )
        if request.method == "POST":
            decision = request.form.get("decision")
            try:
                if decision == "approve":
                    self.approve_app_session(request_id, login)
                else:
                    self.deny_app_session(request_id)
            except KeyError:
                return html_response("Unknown request", "<p id='error'>Already decided.</p>", 409)
            word = "approved" if decision == "approve" else "denied"
            return html_response(
                "Done", f"<p id='result'>Request {word}. You may return to your application.</p>"
            )
        body = (
            f"<p>{escape(app_name)} on {escape(machine)} asks to sign in as "
            f"<b id='user'>{escape(login)}</b>.</p>"
            "<form method='post'>"
            "<button type='submit' name='decision' value='approve' id='approve'>Approve</button>"
            "<button type='submit' name='decision' value='deny' id='deny'>Deny</button>"
            "</form>"
        )
        return html_response("Approve sign in", body)
