"""The web login: ``/auth/renew`` -> identity provider (a second origin) -> ``/auth/landing``."""

from __future__ import annotations

import secrets
import time
from html import escape
from typing import Any, Optional
from urllib.parse import quote_plus, urlencode

from .common import IDP_SESSION_COOKIE, ApiError, Ctx, html_response
from .state import SiteState


def browser_login(state: SiteState, request: Any, ctx: Ctx) -> Optional[str]:
    """The login of the browser's valid site session (``_session_id`` cookie), or None."""
    token = request.cookies.get("_session_id")
    with state.lock:
        try:
            session = state.session_for(token, saml_redirect=False)
        except ApiError:
            return None
    if session.is_script:
        return None
    ctx.auth, ctx.login = "cookie", session.login
    return session.login


class WebLoginMixin:
    """The site's browser login and the identity provider it sends people to."""

    def _h_renew(self, request: Any, ctx: Ctx) -> Any:
        from werkzeug.utils import redirect

        query = {"return_to": self.url + "/auth/sso_callback"}
        for key in ("product", "email", "sso_domain"):
            if request.args.get(key):
                query[key] = request.args[key]
        return redirect(f"{self.idp_url}/login?{urlencode(query)}", code=302)

    def _h_user_login(self, request: Any, ctx: Ctx) -> Any:
        """``/user/login?return_path=/x``: the site's sign-in page; after the identity provider,
        the person lands on ``return_path`` (a path on this site only)."""
        from werkzeug.utils import redirect

        return_path = request.args.get("return_path", "")
        callback = self.url + "/auth/sso_callback"
        if return_path.startswith("/") and not return_path.startswith("//"):
            callback += "?" + urlencode({"return_path": return_path})
        query = urlencode({"return_to": callback})
        return redirect(f"{self.idp_url}/login?{query}", code=302)

    def _h_sso_callback(self, request: Any, ctx: Ctx) -> Any:
        from werkzeug.utils import redirect

        ticket = request.args.get("ticket", "")
        with self.state.lock:
            entry = self.state.idp_tickets.pop(ticket, None)
            if entry is None or time.time() - entry[1] > 60:
                return html_response(
                    "Login failed", "<p id='error'>Unknown or expired ticket.</p>", status=403
                )
            login = entry[0]
            ctx.auth, ctx.login = "cookie", login
            token = self.state.new_session(login)  # a NEW _session_id on every login and renewal
            session = self.state.sessions[token]
            csrf = secrets.token_hex(16)
            self.state.secrets.add(csrf)
            user_id = self.state.users[login].id
        return_path = request.args.get("return_path", "")
        if not (return_path.startswith("/") and not return_path.startswith("//")):
            return_path = "/auth/landing"
        response = redirect(self.url + return_path, code=302)
        response.set_cookie("_session_id", token, path="/", httponly=True)
        response.set_cookie("shotgun_current_user_login", quote_plus(login), path="/")
        response.set_cookie(f"csrf_token_u{user_id}", csrf, path="/")
        if session.claims_expire_at is not None:
            response.set_cookie(
                "shotgun_current_user_sso_claims_expiration",
                str(int(session.claims_expire_at)),
                path="/",
            )
        else:
            response.set_cookie(
                "shotgun_current_session_expiration", str(int(session.expires_at)), path="/"
            )
        return response

    def _h_landing(self, request: Any, ctx: Ctx) -> Any:
        login = browser_login(self.state, request, ctx)
        who = f"<p id='user'>Logged in as {escape(login)}.</p>" if login else ""
        return html_response("Logged in", f"<h1 id='landing'>You are logged in.</h1>{who}")

    def _h_idp_login(self, request: Any, ctx: Ctx) -> Any:
        from werkzeug.utils import redirect

        source = request.form if request.method == "POST" else request.args
        return_to = source.get("return_to", "")
        if not return_to.startswith(self.url + "/"):
            return html_response("Bad request", "<p id='error'>Unknown relying party.</p>", 400)

        def back_to_site(login: str) -> Any:
            ticket = secrets.token_urlsafe(24)
            self.state.idp_tickets[ticket] = (login, time.time())
            self.state.secrets.add(ticket)
            joiner = "&" if "?" in return_to else "?"
            return redirect(f"{return_to}{joiner}{urlencode({'ticket': ticket})}", code=302)

        error = ""
        with self.state.lock:
            if request.method == "GET":
                login = self.state.idp_sessions.get(request.cookies.get(IDP_SESSION_COOKIE, ""))
                if login in self.state.users:  # signed in at the IdP already: no form (renewal)
                    ctx.auth, ctx.login = "cookie", login
                    return back_to_site(login)
            else:
                login = source.get("login", "")
                ctx.auth, ctx.login = "password", login or None
                try:
                    self.state.check_password(login, source.get("password", ""))
                    self.state.check_2fa(login, source.get("code"))
                except ApiError:
                    error = "Invalid login or password."
                else:
                    cookie = secrets.token_urlsafe(24)
                    self.state.idp_sessions[cookie] = login
                    self.state.secrets.add(cookie)
                    response = back_to_site(login)
                    response.set_cookie(IDP_SESSION_COOKIE, cookie, path="/", httponly=True)
                    return response
        email = source.get("email", "") if request.method == "GET" else source.get("login", "")
        if email and "@" in email:
            email = email.split("@")[0]
        body = (
            "<h1>Sign in</h1>"
            + (f"<p id='error'>{escape(error)}</p>" if error else "")
            + "<form id='login_form' method='post' action='/login'>"
            f"<input type='hidden' name='return_to' value='{escape(return_to, quote=True)}'>"
            "<label for='login'>Login</label>"
            f"<input type='text' id='login' name='login' value='{escape(email, quote=True)}'>"
            "<label for='password'>Password</label>"
            "<input type='password' id='password' name='password'>"
            "<label for='code'>2FA code (if enabled)</label>"
            "<input type='text' id='code' name='code'>"
            "<button type='submit' id='submit'>Sign in</button>"
            "</form>"
        )
        return html_response("Sign in", body, status=401 if error else 200)
