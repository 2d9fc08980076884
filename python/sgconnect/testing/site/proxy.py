"""A forward HTTP proxy on 127.0.0.1 with Basic auth, that journals what goes through it.

:class:`ForwardProxy` relays absolute-form requests (``GET http://127.0.0.1:8000/path``) and
``CONNECT`` tunnels (HTTPS), only to loopback targets (it never resolves a name). Whether a
client honours ``NO_PROXY`` is the client's business: the journal shows which requests came
through the proxy, and which did not.
"""

from __future__ import annotations

import base64
import logging
import select
import socket
import socketserver
import threading
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

logger = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True)
class ProxyRequest:
    """One request the proxy received.

    :ivar method: ``CONNECT`` for a tunnel, else the HTTP method.
    :ivar target: ``host:port`` for a tunnel, else the absolute URL (query string dropped).
    :ivar authorized: Whether the ``Proxy-Authorization`` matched (always true without auth).
    :ivar status: What the proxy answered itself (200 tunnel, 407, 502), or ``None`` when it
        relayed the origin's answer.
    """

    method: str
    target: str
    authorized: bool
    status: Optional[int]


class ForwardProxy:
    """A forward proxy for tests: ``with ForwardProxy(auth=("user", "pass")) as proxy:``.

    :param auth: ``(user, password)`` for Basic ``Proxy-Authorization`` (407 without it), or
        ``None`` for an open proxy.
    :ivar url: ``http://127.0.0.1:<port>`` (no credentials; see :meth:`url_with_auth`).
    """

    def __init__(self, auth: Optional[Tuple[str, str]] = None):
        self.auth = auth
        self._lock = threading.Lock()
        self._journal: List[ProxyRequest] = []
        self._server: Optional[socketserver.ThreadingTCPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._open: List[socket.socket] = []

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started: use `with ForwardProxy() as proxy:`")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def url_with_auth(self) -> str:
        """``http://user:password@127.0.0.1:<port>`` (what ``HTTPS_PROXY`` takes)."""
        if self.auth is None:
            return self.url
        return f"http://{self.auth[0]}:{self.auth[1]}@127.0.0.1:{self.port}"

    @property
    def journal(self) -> List[ProxyRequest]:
        with self._lock:
            return list(self._journal)

    def start(self) -> ForwardProxy:
        if self._server is not None:
            return self
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            rbufsize = 0  # unbuffered: nothing the client sent stays behind in a buffer

            def handle(self) -> None:
                proxy._handle(self)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                logger.debug("forward proxy: connection failed", exc_info=True)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            socks, self._open = self._open, []
        for sock in socks:
            try:
                sock.close()
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _log(self, entry: ProxyRequest) -> None:
        with self._lock:
            self._journal.append(entry)

    def _authorized(self, headers: List[Tuple[str, str]]) -> bool:
        if self.auth is None:
            return True
        expected = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
        return any(k.lower() == "proxy-authorization" and v == expected for k, v in headers)

    def _handle(self, handler: socketserver.StreamRequestHandler) -> None:
        line = handler.rfile.readline(65537).decode("latin-1").strip()
        if not line:
            return
        headers: List[Tuple[str, str]] = []
        while True:
            raw = handler.rfile.readline(65537).decode("latin-1")
            if raw in ("\r\n", "\n", ""):
                break
            key, _, value = raw.partition(":")
            headers.append((key.strip(), value.strip()))
        method, target, _version = (line.split(" ") + ["", ""])[:3]
        authorized = self._authorized(headers)
        shown = target.split("?", 1)[0]

        def refuse(status: int, reason: str, extra: str = "") -> None:
            self._log(ProxyRequest(method, shown, authorized, status))
            handler.wfile.write(
                f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode("latin-1")
            )

        if not authorized:
            refuse(407, "Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="p"\r\n')
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
        elif target.startswith("http://"):
            hostport, _, path = target[len("http://") :].partition("/")
            host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "80")
            path = "/" + path
        else:
            refuse(400, "Bad Request")
            return
        if host not in _LOOPBACK:  # never resolve a name, never leave the machine
            refuse(502, "Bad Gateway")
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        except (OSError, ValueError):
            refuse(502, "Bad Gateway")
            return
        with self._lock:
            self._open.append(upstream)
        try:
            if method == "CONNECT":
                self._log(ProxyRequest(method, shown, True, 200))
                handler.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                handler.wfile.flush()
            else:
                self._log(ProxyRequest(method, shown, True, None))
                kept = [
                    (k, v)
                    for k, v in headers
                    if not k.lower().startswith("proxy-") and k.lower() != "connection"
                ]
                head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept)
                upstream.sendall((head + "Connection: close\r\n\r\n").encode("latin-1"))
                length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
                while length > 0:
                    chunk = handler.rfile.read(min(length, 65536))
                    if not chunk:
                        break
                    upstream.sendall(chunk)
                    length -= len(chunk)
            self._relay(handler, upstream)
        finally:
            upstream.close()

    @staticmethod
    def _relay(handler: socketserver.StreamRequestHandler, upstream: socket.socket) -> None:
        client = handler.connection
        upstream.settimeout(None)
        pair = {client: upstream, upstream: client}
        while True:
            readable, _, _ = select.select(list(pair), [], [], 30)
            if not readable:
                return
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                pair[sock].sendall(data)
