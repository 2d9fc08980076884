"""Serving: the two HTTP servers (site and identity provider), routing and dispatch."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from .common import (
    SAML_LOGIN_REQUEST,
    Ctx,
    ForeignRequest,
    json_response,
    logger,
    rest_not_found,
)
from .faults import after_fault, faulted_response, take_fault

if TYPE_CHECKING:
    from .localsite import LocalSite


class NetworkMixin:
    """Start and stop the servers; route each request to its handler and journal it."""

    def start(self) -> LocalSite:
        """Start the site, identity provider and foreign origin servers (idempotent).

        :raises OSError: the port is taken.
        """
        if self._servers:
            return self
        self.state.stopping.clear()
        from .server import WireServer

        self._site_routes = self._site_map()
        self._idp_routes = self._idp_map()
        ssl_context = self._tls_context() if self.tls else None
        common = {
            "stopping": self.state.stopping,
            "ssl_context": ssl_context,
            "latency": self.latency,
            "idle_timeout": self.keep_alive_timeout,
        }
        site_server = WireServer(self.port, self._site_wsgi, **common)
        try:
            idp_server = WireServer(0, self._idp_wsgi, **common)
            foreign_server = WireServer(0, self._foreign_wsgi, **common)
        except OSError:
            site_server.server_close()
            raise
        scheme = "https" if self.tls else "http"
        self._url = f"{scheme}://127.0.0.1:{site_server.server_port}"
        self._idp_url = f"{scheme}://127.0.0.1:{idp_server.server_port}"
        self._foreign_url = f"{scheme}://127.0.0.1:{foreign_server.server_port}"
        self._servers = [site_server, idp_server, foreign_server]
        for server, name in (
            (site_server, "site"),
            (idp_server, "idp"),
            (foreign_server, "foreign"),
        ):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sgconnect-local-{name}-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def slow_request_bodies(self, bytes_per_second: Optional[float]) -> None:
        """Read the request bodies of connections opened from now on at ``bytes_per_second``
        (``None``: at once), through a small receive window: a slow uplink for uploads."""
        for server in self._servers[:1]:
            server.body_read_rate = bytes_per_second

    def slow_replies(self, bytes_per_second: Optional[float]) -> None:
        """Write the site's replies at ``bytes_per_second`` (``None``: at once), in 16 KiB steps:
        a slow downlink for downloads."""
        for server in self._servers[:1]:
            server.reply_write_rate = bytes_per_second

    def _tls_context(self) -> Any:
        """A server TLS context with a certificate for 127.0.0.1 and localhost, signed by a
        throw-away CA (``trustme``) whose PEM is written to :attr:`ca_path`."""
        import ssl
        import tempfile

        try:
            import trustme
        except ImportError:
            raise RuntimeError(
                "LocalSite(tls=True) needs trustme (the site extra): pip install trustme"
            ) from None
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._tls_dir = tempfile.TemporaryDirectory(prefix="sgconnect-site-ca-")
        path = f"{self._tls_dir.name}/ca.pem"
        ca.cert_pem.write_to_path(path)
        self._ca_path = path
        return context

    def stop(self) -> None:
        """Stop every server, close every open connection and join the threads (idempotent)."""
        servers, threads = self._servers, self._threads
        self._servers, self._threads = [], []
        self.state.stopping.set()  # slow, stalled and dropped connections end at once
        for server in servers:
            server.shutdown()
            server.close_connections()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)
        tls_dir, self._tls_dir = getattr(self, "_tls_dir", None), None
        if tls_dir is not None:
            tls_dir.cleanup()
            self._ca_path = None

    def __enter__(self) -> LocalSite:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The site, ``http://127.0.0.1:<port>``."""
        if self._url is None:
            raise RuntimeError("the LocalSite is not started: use `with LocalSite() as site:`")
        return self._url

    @property
    def idp_url(self) -> str:
        """The identity provider, a second origin: ``http://127.0.0.1:<other port>``."""
        if self._idp_url is None:
            raise RuntimeError("the LocalSite is not started: use `with LocalSite() as site:`")
        return self._idp_url

    @property
    def foreign_url(self) -> str:
        """A third origin that answers every request ``200 {"foreign": true}`` and journals it
        (:attr:`foreign_journal`): where the ``redirect`` fault sends clients."""
        if self._foreign_url is None:
            raise RuntimeError("the LocalSite is not started: use `with LocalSite() as site:`")
        return self._foreign_url

    @property
    def ca_path(self) -> str:
        """The PEM file of the throw-away CA that signed the site's certificate (``tls=True``):
        give it to clients as ``SHOTGUN_API_CACERTS`` / ``ca_certs`` / ``cafile``."""
        if not self.tls:
            raise RuntimeError("this LocalSite serves plain HTTP: LocalSite(tls=True) has a CA")
        if getattr(self, "_ca_path", None) is None:
            raise RuntimeError("the LocalSite is not started: use `with LocalSite() as site:`")
        return self._ca_path

    def client_ssl_context(self) -> Any:
        """An :class:`ssl.SSLContext` trusting only the site's throw-away CA (``tls=True``)."""
        import ssl

        return ssl.create_default_context(cafile=self.ca_path)

    @property
    def counters(self) -> Dict[str, int]:
        """The site origin's wire counters: ``{"tcp_connections", "tls_handshakes",
        "requests"}`` since start (or :meth:`reset_counters`)."""
        return (
            self._servers[0].counters.as_dict()
            if self._servers
            else {"tcp_connections": 0, "tls_handshakes": 0, "requests": 0}
        )

    @property
    def idp_counters(self) -> Dict[str, int]:
        """The identity provider origin's wire counters (same keys as :attr:`counters`)."""
        return (
            self._servers[1].counters.as_dict()
            if self._servers
            else {"tcp_connections": 0, "tls_handshakes": 0, "requests": 0}
        )

    def reset_counters(self) -> None:
        """Zero the wire counters of every origin."""
        for server in self._servers:
            server.counters.reset()

    @property
    def foreign_journal(self) -> List[ForeignRequest]:
        """What the foreign origin received, in order (headers included: leak checks)."""
        with self.state.lock:
            return list(self.state.foreign_journal)

    def _foreign_wsgi(self, environ: Dict[str, Any], start_response: Callable) -> Any:
        from werkzeug.wrappers import Request

        request = Request(environ)
        entry = ForeignRequest(
            request.method,
            request.path,
            request.query_string.decode("latin-1"),
            dict(request.headers.items()),
            request.get_data(),
        )
        with self.state.lock:
            self.state.foreign_journal.append(entry)
        return json_response({"foreign": True})(environ, start_response)

    def _site_map(self) -> Any:
        from werkzeug.routing import Map, Rule

        get, post, put = ["GET"], ["POST"], ["PUT"]
        asl = "/internal_api/app_session_request"
        table = [
            ("/api3/json", "api3", post),
            ("/api3/track_metrics/", "track_metrics", post),
            ("/auth/renew", "renew", get),
            (SAML_LOGIN_REQUEST, "renew", get),
            ("/auth/sso_callback", "sso_callback", get),
            ("/auth/landing", "landing", get),
            ("/user/login", "user_login", get),
            ("/upload/<any(publish_thumbnail, upload_file):kind>", "upload", post),
            ("/file_serve/attachment/<int:attachment_id>", "file_serve", get),
            ("/images/status/transient/<int:attachment_id>", "transient_image", get),
            ("/internal_api/session", "web_session", ["GET", "POST"]),
            (asl, "asl_get", get),
            (asl + "/<request_id>", "asl_get", get),
            (asl, "asl_create", post),
            (asl + "/<request_id>", "asl_poll", put),
            ("/app_session_request/<request_id>", "asl_page", ["GET", "POST"]),
            ("/api/v1", "rest_root", get),
            ("/api/v1/", "rest_root", get),
            ("/api/v1/auth/access_token", "rest_token", post),
            ("/api/v1/entity/<collection>", "rest_collection", ["GET", "POST"]),
            (
                "/api/v1/entity/<collection>/<int:entity_id>",
                "rest_entity",
                ["GET", "PATCH", "DELETE", "POST"],
            ),
        ]
        return Map(
            [Rule(path, endpoint=endpoint, methods=methods) for path, endpoint, methods in table],
            strict_slashes=False,
        )

    def _idp_map(self) -> Any:
        from werkzeug.routing import Map, Rule

        return Map([Rule("/login", endpoint="idp_login", methods=["GET", "POST"])])

    def _site_wsgi(self, environ: Dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        environ["sgconnect.path"] = path
        if path == "/api/v1.1" or path.startswith("/api/v1.1/"):  # the same API, version 1.1
            environ["PATH_INFO"] = "/api/v1" + path[len("/api/v1.1") :]
            environ["sgconnect.api_version"] = "1.1"
        return self._dispatch(self._site_routes, environ, start_response)

    def _idp_wsgi(self, environ: Dict[str, Any], start_response: Callable) -> Any:
        return self._dispatch(self._idp_routes, environ, start_response)

    def _dispatch(self, routes: Any, environ: Dict[str, Any], start_response: Callable) -> Any:
        from werkzeug.exceptions import HTTPException
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        ctx = Ctx(connection=environ.get("sgconnect.connection"))
        path = environ.get("sgconnect.path", request.path)
        fault = take_fault(self.state, request, ctx) if routes is self._site_routes else None
        if fault is not None:
            faulted = faulted_response(self.state, fault, request, environ, ctx)
            if faulted is not None:
                self.state.record(
                    request.method,
                    path,
                    faulted.status_code,
                    ctx,
                    request.headers.get("User-Agent"),
                    fault.kind,
                )
                return faulted(environ, start_response)
        try:
            adapter = routes.bind_to_environ(environ)
            endpoint, args = adapter.match()
            response = getattr(self, f"_h_{endpoint}")(request, ctx, **args)
        except HTTPException as exc:
            if exc.code == 404 and request.path.startswith("/api/"):  # /api/v2, /api/v1.2...
                response = rest_not_found()
            else:
                response = json_response(
                    {"errors": [{"status": exc.code, "title": exc.name}]}, exc.code or 500
                )
        except Exception:  # never kill the server thread
            logger.debug("local site: handler failed", exc_info=True)
            response = Response(
                json.dumps({"errors": [{"status": 500, "title": "Internal"}]}),
                status=500,
                mimetype="application/json",
            )
        if fault is not None:
            response = after_fault(self.state, fault, request, environ, ctx, response)
        self.state.record(
            request.method,
            path,
            response.status_code,
            ctx,
            request.headers.get("User-Agent"),
            fault.kind if fault is not None else None,
        )
        return response(environ, start_response)
