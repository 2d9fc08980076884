"""Injected faults: per request (path prefix) or per api3 RPC."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Optional

from .common import Ctx, html_page
from .server import WIRE_FAULTS

if TYPE_CHECKING:
    from .state import SiteState

#: What :meth:`LocalSite.inject_fault` can do to a request (see its docstring).
FAULT_KINDS = (
    # the site's own errors
    "http_500",
    "http_502",
    "http_503",
    "html",
    "slow",
    "close",
    # the network's
    "stall",
    "drop_idle",
    "redirect",
    "byte_at_a_time",
    "lose_reply",
    "truncated",
    "bad_utf8",
    "bad_status_line",
    "huge_body",
    "wrong_content_type",
)
#: Kinds that let the site answer for real first (the write is committed), then spoil the reply.
_AFTER_KINDS = ("lose_reply", "wrong_content_type") + WIRE_FAULTS
REDIRECT_STATUSES = (300, 301, 302, 303, 307, 308)


@dataclass
class Fault:
    """An injected fault: what, for how many more requests, and which ones."""

    kind: str
    remaining: int
    path_prefix: str
    delay: float
    rpc: Optional[str]
    status: int = 302
    size: int = 64 * 1024 * 1024
    location: Optional[str] = None
    content_type: str = "text/html; charset=utf-8"


class _DropConnection(ConnectionAbortedError):
    """Raised out of the WSGI app to make the server drop the connection without an answer."""


class FaultsMixin:
    """Queue faults and apply them to the requests they match."""

    def inject_fault(
        self,
        kind: str,
        count: int = 1,
        path_prefix: str = "/api3/json",
        *,
        delay: Optional[float] = None,
        rpc: Optional[str] = None,
        status: int = 302,
        size: int = 64 * 1024 * 1024,
        location: Optional[str] = None,
        content_type: str = "text/html; charset=utf-8",
    ) -> None:
        """Make the next ``count`` requests whose path starts with ``path_prefix`` misbehave.

        :param kind: The site's own errors: ``"http_500"``, ``"http_502"``, ``"http_503"``
            (that status, an HTML error page), ``"html"`` (200 with an HTML page instead of
            JSON), ``"slow"`` (wait ``delay`` seconds, default 3, then answer normally),
            ``"close"`` (read the request, then close the connection without an answer).
            The network's: ``"stall"`` (hold the request ``delay`` seconds, default 3600, or
            until the site stops, then close without an answer: nothing is committed);
            ``"drop_idle"`` (answer normally, then never read from nor write to that keep-alive
            connection again, and never close it: no FIN, no RST, until the site stops);
            ``"redirect"`` (answer ``status``, any 3xx, with ``Location`` = ``location`` or the
            same path and query on :attr:`foreign_url`); ``"byte_at_a_time"`` (the real reply,
            one byte per TCP segment, ``delay`` seconds apart, default 0); ``"lose_reply"``
            (the request is carried out, its write committed, then the connection closes
            without an answer); ``"truncated"`` (the real reply's headers, half its body, then
            close); ``"bad_utf8"`` (200, ``application/json``, a body that is not UTF-8);
            ``"bad_status_line"`` (a status line no client can parse, then close);
            ``"huge_body"`` (the real reply padded with spaces to ``size`` bytes, default
            64 MiB); ``"wrong_content_type"`` (the real reply under ``content_type``).
        :param count: How many matching requests get the fault (then the site behaves again).
        :param path_prefix: Which requests: ``"/api3/json"`` (api3), ``"/api/v1"`` (REST),
            ``"/internal_api/app_session_request"``...; ``"/"`` for all.
        :param delay: Seconds for ``slow``, ``stall`` and ``byte_at_a_time`` (every wait is cut
            short when the site stops).
        :param rpc: Only api3 requests calling this method (``"read"``, ``"info"``...).

        Faults queue up in order; each request takes the first that matches it. A faulted
        request is in the journal with ``fault`` set (``status`` 0 for ``close``).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, not {kind!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        if kind == "redirect" and status not in REDIRECT_STATUSES:
            raise ValueError(f"a redirect status is one of {REDIRECT_STATUSES}, not {status!r}")
        if delay is None:
            delay = {"slow": 3.0, "stall": 3600.0}.get(kind, 0.0)
        fault = Fault(
            kind,
            int(count),
            path_prefix,
            float(delay),
            rpc,
            int(status),
            int(size),
            location,
            content_type,
        )
        with self.state.lock:
            self.state.faults.append(fault)

    def clear_faults(self) -> None:
        """Forget every fault not yet used up."""
        with self.state.lock:
            self.state.faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many faulted answers are still to come."""
        with self.state.lock:
            return sum(fault.remaining for fault in self.state.faults)


def take_fault(state: SiteState, request: Any, ctx: Ctx) -> Optional[Fault]:
    """The first injected fault matching ``request`` (one use of it), or None."""
    with state.lock:
        if not state.faults:
            return None
    rpc = None
    if request.path.startswith("/api3/json"):
        try:  # the body stays cached on the request for the handler
            payload = json.loads(request.get_data(as_text=True) or "null")
            rpc = payload.get("method_name") if isinstance(payload, dict) else None
        except ValueError:
            rpc = None
    with state.lock:
        for fault in state.faults:
            if not request.path.startswith(fault.path_prefix):
                continue
            if fault.rpc is not None and fault.rpc != rpc:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                state.faults.remove(fault)
            ctx.rpc = rpc
            return fault
    return None


def faulted_response(
    state: SiteState, fault: Fault, request: Any, environ: Dict[str, Any], ctx: Ctx
) -> Any:
    """The response a fault gives instead of the real one; None to answer normally."""
    from werkzeug.wrappers import Response

    if fault.kind == "slow":
        state.stopping.wait(fault.delay)
        return None
    if fault.kind in _AFTER_KINDS:
        return None
    if fault.kind == "stall":
        state.stopping.wait(fault.delay)
    if fault.kind in ("close", "stall"):
        request.get_data()  # read the request: the client sees a clean end of stream
        # Journal first: once the connection is shut, the client may read the journal at once.
        state.record(
            request.method, request.path, 0, ctx, request.headers.get("User-Agent"), fault.kind
        )
        connection = environ.get("werkzeug.socket")
        if connection is not None:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise _DropConnection("injected fault: connection closed")
    if fault.kind == "html":
        return Response(
            html_page("Maintenance", "<h1>Down for maintenance</h1><p>Back soon.</p>"),
            status=200,
            mimetype="text/html",
        )
    if fault.kind == "redirect":
        location = fault.location
        if location is None:
            query = request.query_string.decode("latin-1")
            location = state.site.foreign_url + request.path + (f"?{query}" if query else "")
        response = Response(b"", status=fault.status)
        response.headers["Location"] = location
        return response
    if fault.kind == "bad_utf8":
        return Response(b'{"results": "caf\xe9 \xff\xfe"}', status=200, mimetype="application/json")
    status = int(fault.kind.split("_")[1])
    return Response(
        html_page(f"{status} error", f"<h1>{status}</h1><p>Something went wrong.</p>"),
        status=status,
        mimetype="text/html",
    )


def after_fault(
    state: SiteState,
    fault: Fault,
    request: Any,
    environ: Dict[str, Any],
    ctx: Ctx,
    response: Any,
) -> Any:
    """Spoil the real ``response`` for the kinds that answer first."""
    if fault.kind == "lose_reply":
        state.record(
            request.method, request.path, 0, ctx, request.headers.get("User-Agent"), fault.kind
        )
        raise _DropConnection("injected fault: reply lost")
    if fault.kind == "wrong_content_type":
        response.headers["Content-Type"] = fault.content_type
    elif fault.kind in WIRE_FAULTS:
        environ["sgconnect.wire_fault"] = fault
    return response
