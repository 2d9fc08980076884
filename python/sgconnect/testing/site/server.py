"""The wire: a threaded HTTP/1.1 server with keep-alive, optional TLS, latency and counters.

Each origin of a :class:`~sgconnect.testing.LocalSite` (the site, its identity provider, the
"foreign" origin) is one :class:`WireServer`. It runs a WSGI app (Werkzeug's ``Request`` and
``Response`` are used by the app, not by the server), and it owns everything a WSGI app cannot
do: keep a connection open between requests, answer over TLS, wait an injected round-trip time,
count TCP connections, TLS handshakes and requests, and misbehave on the wire (reply one byte at
a time, truncate a body, send a bad status line, a huge body, or forget an idle connection).
"""

from __future__ import annotations

import io
import logging
import socket
import socketserver
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Dict, List, Optional, Set
from urllib.parse import unquote

logger = logging.getLogger(__name__)

#: Wire-level fault kinds the server itself carries out (the app marks the request).
WIRE_FAULTS = ("byte_at_a_time", "truncated", "bad_status_line", "huge_body", "drop_idle")


class WireCounters:
    """TCP connections accepted, TLS handshakes completed and requests read, per origin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tcp_connections = 0
        self.tls_handshakes = 0
        self.requests = 0

    def bump(self, name: str) -> int:
        with self._lock:
            value = getattr(self, name) + 1
            setattr(self, name, value)
            return value

    def as_dict(self) -> Dict[str, int]:
        with self._lock:
            return {
                "tcp_connections": self.tcp_connections,
                "tls_handshakes": self.tls_handshakes,
                "requests": self.requests,
            }

    def reset(self) -> None:
        with self._lock:
            self.tcp_connections = self.tls_handshakes = self.requests = 0


_connection_ids = iter(range(1, 1 << 62))
_connection_ids_lock = threading.Lock()


def _next_connection_id() -> int:
    with _connection_ids_lock:
        return next(_connection_ids)


class _Handler(BaseHTTPRequestHandler):
    """One TCP connection: as many requests as the client sends (HTTP/1.1 keep-alive)."""

    protocol_version = "HTTP/1.1"
    server: WireServer

    def setup(self) -> None:
        server = self.server
        self.connection_id = _next_connection_id()
        server.counters.bump("tcp_connections")
        server.track(self.request)
        if server.body_read_rate:  # a slow link: a small window, so the sender waits
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        server.wait(server.latency)  # the TCP handshake's round trip
        if server.ssl_context is not None:
            raw = self.request
            try:
                self.request = server.ssl_context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                server.untrack(raw)
                raw.close()
                raise
            server.untrack(raw)
            server.track(self.request)
            server.counters.bump("tls_handshakes")
            server.wait(server.latency)  # TLS 1.3: one more round trip
        self.request.settimeout(server.idle_timeout)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.untrack(self.request)

    def log_message(self, format: str, *args: Any) -> None:  # URLs may carry tickets
        logger.debug("local site wire: request log line suppressed")

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        rate = self.server.body_read_rate
        if rate and length > 0:
            return self._read_slowly(length, rate)
        return self.rfile.read(length) if length > 0 else b""

    def _write_slowly(self, data: bytes, rate: float) -> None:
        """A slow downlink: ``data`` written at ``rate`` bytes per second, in 16 KiB steps."""
        step = 16 * 1024
        for start in range(0, len(data), step):
            block = data[start : start + step]
            self.wfile.write(block)
            self.wfile.flush()
            if self.server.wait(len(block) / rate):
                break

    def _read_slowly(self, length: int, rate: float) -> bytes:
        """A slow link: the body read at ``rate`` bytes per second, in 16 KiB steps, through a
        small receive buffer (so that the sender waits for it)."""
        step = 16 * 1024
        out = bytearray()
        while len(out) < length:
            block = self.rfile.read(min(step, length - len(out)))
            if not block:
                break
            out += block
            if self.server.wait(len(block) / rate):
                break
        return bytes(out)

    def _environ(self, body: bytes) -> Dict[str, Any]:
        path, _, query = self.path.partition("?")
        if path.startswith(("http://", "https://")):  # absolute-form (sent to a proxy)
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        server = self.server
        environ: Dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if server.ssl_context is not None else "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "werkzeug.socket": self.connection,
            "sgconnect.connection": self.connection_id,
        }
        if self.headers.get("Content-Type"):
            environ["CONTENT_TYPE"] = self.headers["Content-Type"]
        for key, value in self.headers.items():
            name = "HTTP_" + key.upper().replace("-", "_")
            if name in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[name] = f"{environ[name]},{value}" if name in environ else value
        return environ

    def _serve(self) -> None:
        server = self.server
        server.counters.bump("requests")
        body = self._read_body()
        environ = self._environ(body)
        reply: List[Any] = []

        def start_response(status: str, headers: List[Any], exc_info: Any = None) -> Callable:
            reply[:] = [status, headers]
            return lambda data: None

        try:
            result = server.app(environ, start_response)
            try:
                payload = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except ConnectionAbortedError:  # the app dropped the connection on purpose
            self.close_connection = True
            return
        server.wait(server.latency)  # the reply's round trip
        self._write(reply[0], reply[1], payload, environ.get("sgconnect.wire_fault"))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def _write(self, status: str, headers: List[Any], payload: bytes, fault: Any) -> None:
        kind = getattr(fault, "kind", None)
        if kind == "bad_status_line":
            self.wfile.write(b"HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if self.command == "HEAD":
            payload = b""
        client_closes = self.headers.get("Connection", "").lower() == "close"
        keep = server_keeps = not client_closes and self.request_version == "HTTP/1.1"
        size = len(payload)
        if kind == "huge_body":
            size = max(int(getattr(fault, "size", 0) or 0), len(payload))
        lines = [f"HTTP/1.1 {status}"]
        for key, value in headers:
            if key.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            lines.append(f"{key}: {value}")
        lines.append(f"Content-Length: {size}")
        if kind == "truncated":
            server_keeps = False
        lines.append(f"Connection: {'keep-alive' if server_keeps else 'close'}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if kind == "byte_at_a_time":
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            step = float(getattr(fault, "delay", 0.0) or 0.0)
            data = head + payload
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                if step and self.server.wait(step):
                    break
        elif kind == "truncated":
            self.wfile.write(head + payload[: len(payload) // 2])
            self.wfile.flush()
        elif kind == "huge_body":
            self.wfile.write(head + payload)
            left = size - len(payload)
            block = b" " * 65536
            while left > 0:
                n = min(left, len(block))
                self.wfile.write(block[:n])
                left -= n
            self.wfile.flush()
        elif self.server.reply_write_rate:
            self._write_slowly(head + payload, self.server.reply_write_rate)
        else:
            self.wfile.write(head + payload)
            self.wfile.flush()
        self.close_connection = not (keep and server_keeps)
        if kind == "drop_idle" and not self.close_connection:
            # A NAT that forgot the flow: never read, never answer, never FIN or RST.
            self.server.wait(None)
            self.close_connection = True


class WireServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """One origin on ``127.0.0.1``: HTTP/1.1 keep-alive, optional TLS, latency, counters."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    block_on_close = False

    def __init__(
        self,
        port: int,
        app: Callable,
        *,
        stopping: threading.Event,
        ssl_context: Optional[ssl.SSLContext] = None,
        latency: float = 0.0,
        idle_timeout: float = 60.0,
    ):
        self.app = app
        self.ssl_context = ssl_context
        self.latency = float(latency)
        self.idle_timeout = float(idle_timeout)
        #: Bytes per second at which request bodies are read (``None``: at once): a slow link
        #: for uploads (:meth:`~sgconnect.testing.LocalSite.slow_request_bodies`).
        self.body_read_rate: Optional[float] = None
        #: Bytes per second at which replies are written (``None``: at once): a slow downlink
        #: (:meth:`~sgconnect.testing.LocalSite.slow_replies`).
        self.reply_write_rate: Optional[float] = None
        self.counters = WireCounters()
        self._stopping = stopping
        self._open: Set[Any] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def server_port(self) -> int:
        return int(self.server_address[1])

    def wait(self, seconds: Optional[float]) -> bool:
        """Sleep ``seconds`` (None: until the site stops); True when the site is stopping."""
        if seconds is not None and seconds <= 0:
            return self._stopping.is_set()
        return self._stopping.wait(seconds)

    def track(self, sock: Any) -> None:
        with self._open_lock:
            self._open.add(sock)

    def untrack(self, sock: Any) -> None:
        with self._open_lock:
            self._open.discard(sock)

    def close_connections(self) -> None:
        """Close every connection still open (keep-alive, stalled, dropped)."""
        with self._open_lock:
            socks, self._open = list(self._open), set()
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("local site wire: connection failed", exc_info=True)
