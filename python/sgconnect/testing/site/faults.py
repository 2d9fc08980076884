"""Injected faults: per request (path prefix) or per api3 RPC."""

from __future__ import annotations

import json
import socket
from typing import Any, Dict, Optional

from .common import (
    _Ctx,
    _html_page,
)

FAULT_KINDS = ("http_500", "http_502", "http_503", "html", "slow", "close")


class _Fault:
    """An injected fault: what, for how many more requests, and which ones."""

    __slots__ = ("kind", "remaining", "path_prefix", "delay", "rpc")

    def __init__(self, kind: str, count: int, path_prefix: str, delay: float, rpc: Optional[str]):
        self.kind = kind
        self.remaining = count
        self.path_prefix = path_prefix
        self.delay = delay
        self.rpc = rpc


class _DropConnection(ConnectionAbortedError):
    """Raised out of the WSGI app to make Werkzeug drop the connection silently."""


class FaultsMixin:
    """Queue faults and apply them to the requests they match."""

    def inject_fault(
        self,
        kind: str,
        count: int = 1,
        path_prefix: str = "/api3/json",
        *,
        delay: float = 3.0,
        rpc: Optional[str] = None,
    ) -> None:
        """Make the next ``count`` requests whose path starts with ``path_prefix`` misbehave.

        :param kind: ``"http_500"``, ``"http_502"``, ``"http_503"`` (that status, an HTML error
            page), ``"html"`` (200 with an HTML page instead of JSON), ``"slow"`` (wait
            ``delay`` seconds, then answer normally) or ``"close"`` (read the request, then drop
            the connection without an answer).
        :param count: How many matching requests get the fault (then the site behaves again).
        :param path_prefix: Which requests: ``"/api3/json"`` (api3), ``"/api/v1"`` (REST),
            ``"/internal_api/app_session_request"``...; ``"/"`` for all.
        :param delay: Seconds a ``slow`` fault waits (cut short when the site stops).
        :param rpc: Only api3 requests calling this method (``"read"``, ``"info"``...).

        Faults queue up in order; each request takes the first that matches it. A faulted
        request is in the journal with ``fault`` set (``status`` 0 for ``close``).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, not {kind!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(_Fault(kind, int(count), path_prefix, float(delay), rpc))

    def clear_faults(self) -> None:
        """Forget every fault not yet used up."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many faulted answers are still to come."""
        with self._lock:
            return sum(fault.remaining for fault in self._faults)

    def _take_fault(self, request: Any, ctx: _Ctx) -> Optional[_Fault]:
        """The first injected fault matching ``request`` (one use of it), or None."""
        with self._lock:
            if not self._faults:
                return None
        rpc = None
        if request.path.startswith("/api3/json"):
            try:  # the body stays cached on the request for the handler
                payload = json.loads(request.get_data(as_text=True) or "null")
                rpc = payload.get("method_name") if isinstance(payload, dict) else None
            except ValueError:
                rpc = None
        with self._lock:
            for fault in self._faults:
                if not request.path.startswith(fault.path_prefix):
                    continue
                if fault.rpc is not None and fault.rpc != rpc:
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                ctx.rpc = rpc
                return fault
        return None

    def _faulted(self, fault: _Fault, request: Any, environ: Dict[str, Any], ctx: _Ctx) -> Any:
        """The response a fault gives instead of the real one; None to answer normally."""
        from werkzeug.wrappers import Response

        if fault.kind == "slow":
            self._stopping.wait(fault.delay)
            return None
        if fault.kind == "close":
            request.get_data()  # read the request: the client sees a clean end of stream
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._record(
                request.method, request.path, 0, ctx, request.headers.get("User-Agent"), fault.kind
            )
            raise _DropConnection("injected fault: connection closed")
        if fault.kind == "html":
            return Response(
                _html_page("Maintenance", "<h1>Down for maintenance</h1><p>Back soon.</p>"),
                status=200,
                mimetype="text/html",
            )
        status = int(fault.kind.split("_")[1])
        return Response(
            _html_page(f"{status} error", f"<h1>{status}</h1><p>Something went wrong.</p>"),
            status=status,
            mimetype="text/html",
        )
