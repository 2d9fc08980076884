"""Serving: the two HTTP servers (site and identity provider), routing and dispatch."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict

from .common import (
    _SAML_LOGIN_REQUEST,
    _Ctx,
    _html_page,
    logger,
)

if TYPE_CHECKING:
    from .localsite import LocalSite


class NetworkMixin:
    """Start and stop the servers; route each request to its handler and journal it."""

    def start(self) -> LocalSite:
        """Start the site and the identity provider servers (idempotent)."""
        if self._servers:
            return self
        self._stopping.clear()
        from werkzeug.serving import WSGIRequestHandler, make_server

        class _QuietHandler(WSGIRequestHandler):
            """No request lines on stderr: URLs may carry tickets and tokens."""

            def log(self, type: str, message: str, *args: Any) -> None:
                logger.debug("local site %s: %s", type, "request log line suppressed")

        self._site_routes = self._site_map()
        self._idp_routes = self._idp_map()
        site_server = make_server(
            "127.0.0.1", self.port, self._site_wsgi, threaded=True, request_handler=_QuietHandler
        )
        idp_server = make_server(
            "127.0.0.1", 0, self._idp_wsgi, threaded=True, request_handler=_QuietHandler
        )
        for server in (site_server, idp_server):
            server.socket.listen(1024)  # many concurrent clients in tests
        self._url = f"http://127.0.0.1:{site_server.server_port}"
        self._idp_url = f"http://127.0.0.1:{idp_server.server_port}"
        self._servers = [site_server, idp_server]
        for server, name in ((site_server, "site"), (idp_server, "idp")):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sgconnect-local-{name}-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both servers and join their threads (idempotent)."""
        servers, threads = self._servers, self._threads
        self._servers, self._threads = [], []
        self._stopping.set()  # slow faults answer at once
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)

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

    def _site_map(self) -> Any:
        from werkzeug.routing import Map, Rule

        return Map(
            [
                Rule("/api3/json", endpoint="api3", methods=["POST"]),
                Rule("/api3/track_metrics/", endpoint="track_metrics", methods=["POST"]),
                Rule("/auth/renew", endpoint="renew", methods=["GET"]),
                Rule(_SAML_LOGIN_REQUEST, endpoint="renew", methods=["GET"]),
                Rule("/auth/sso_callback", endpoint="sso_callback", methods=["GET"]),
                Rule("/auth/landing", endpoint="landing", methods=["GET"]),
                Rule("/internal_api/app_session_request", endpoint="asl_create", methods=["POST"]),
                Rule(
                    "/internal_api/app_session_request/<request_id>",
                    endpoint="asl_poll",
                    methods=["PUT"],
                ),
                Rule(
                    "/app_session_request/<request_id>",
                    endpoint="asl_page",
                    methods=["GET", "POST"],
                ),
                Rule("/api/v1", endpoint="rest_root", methods=["GET"]),
                Rule("/api/v1/", endpoint="rest_root", methods=["GET"]),
                Rule("/api/v1/auth/access_token", endpoint="rest_token", methods=["POST"]),
                Rule(
                    "/api/v1/entity/<collection>",
                    endpoint="rest_collection",
                    methods=["GET", "POST"],
                ),
                Rule(
                    "/api/v1/entity/<collection>/<int:entity_id>",
                    endpoint="rest_entity",
                    methods=["GET"],
                ),
            ],
            strict_slashes=False,
        )

    def _idp_map(self) -> Any:
        from werkzeug.routing import Map, Rule

        return Map([Rule("/login", endpoint="idp_login", methods=["GET", "POST"])])

    def _site_wsgi(self, environ: Dict[str, Any], start_response: Callable) -> Any:
        return self._dispatch(self._site_routes, environ, start_response)

    def _idp_wsgi(self, environ: Dict[str, Any], start_response: Callable) -> Any:
        return self._dispatch(self._idp_routes, environ, start_response)

    def _dispatch(self, routes: Any, environ: Dict[str, Any], start_response: Callable) -> Any:
        from werkzeug.exceptions import HTTPException
        from werkzeug.wrappers import Request, Response

        request = Request(environ)
        ctx = _Ctx()
        fault = self._take_fault(request, ctx) if routes is self._site_routes else None
        if fault is not None:
            faulted = self._faulted(fault, request, environ, ctx)
            if faulted is not None:
                self._record(
                    request.method,
                    request.path,
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
            response = self._json(
                {"errors": [{"status": exc.code, "title": exc.name}]}, exc.code or 500
            )
        except Exception:  # never kill the server thread
            logger.debug("local site: handler failed", exc_info=True)
            response = Response(
                json.dumps({"errors": [{"status": 500, "title": "Internal"}]}),
                status=500,
                mimetype="application/json",
            )
        self._record(
            request.method,
            request.path,
            response.status_code,
            ctx,
            request.headers.get("User-Agent"),
            fault.kind if fault is not None else None,
        )
        return response(environ, start_response)

    @staticmethod
    def _json(payload: Any, status: int = 200) -> Any:
        from werkzeug.wrappers import Response

        return Response(json.dumps(payload), status=status, mimetype="application/json")

    @staticmethod
    def _html(title: str, body: str, status: int = 200) -> Any:
        from werkzeug.wrappers import Response

        return Response(_html_page(title, body), status=status, mimetype="text/html")
