"""The one wire under both surfaces: api3 (:mod:`sgconnect.transport.api3`) and REST and login
requests (:mod:`sgconnect.transport.http`).

Each promise the two surfaces share is written here once:

- **one deadline per call** (:class:`Deadline`): connect, TLS, the proxy tunnel, sending and every
  read share what is left of it; a server trickling one byte at a time cannot stretch a call;
- **deadline-bounded sockets**: the connections of :func:`open_connection` (:data:`Connection`)
  wrap their socket so that every send and every read waits only for what is left of the
  connection's current ``deadline``;
- **transfers bounded by progress** (:class:`TransferHTTPConnection`): a file's body moves
  :data:`SEND_BLOCK` bytes per ``timeout`` at least, however long the whole takes;
- **connection opening** (:func:`open_connection`): TCP, then a ``CONNECT`` tunnel through a proxy
  (``Proxy-Authorization`` goes to the proxy only), then TLS with the one CA rule of
  :mod:`sgconnect.transport.proxies` (or TCP before loading the CA bundle, for a pre-connect);
- **one keep-alive connection per thread and key** (:class:`Pool`), checked before reuse: a
  socket readable while idle was closed by the site (a TLS 1.3 session ticket is not a close),
  and one idle longer than the caller's limit is dropped;
- **the idle rule** (:func:`max_idle`): a connection a NAT may have forgotten silently is never
  trusted with a write;
- **what a malformed reply is** (:func:`malformed_head`, :func:`read_body`): a reply head
  ``http.client`` cannot parse told from a lost connection (``RemoteDisconnected`` is a
  ``BadStatusLine`` too);
- **the reply body** (:func:`read_body`): read in full under a size cap, a truncated one (short of
  its ``Content-Length``, or a cut chunked body) told from a whole one (:class:`BodyError`, which
  each surface words as its :class:`~sgconnect.errors.SiteResponseError`);
- **fork safety**: a forked child never uses a connection of its parent (one
  ``os.register_at_fork`` for every pool; :func:`after_fork` for a surface's own state).
"""

from __future__ import annotations

import http.client
import io
import os
import select
import socket
import ssl
import threading
import time
from typing import Any, Callable, Hashable, Optional

__all__ = [
    "DEFAULT_KEEPALIVE_SECS",
    "STALE_IDLE_SECS",
    "keepalive_secs",
    "max_idle",
    "Deadline",
    "Connection",
    "new_connection",
    "open_connection",
    "idle_socket_closed",
    "usable",
    "Pool",
    "BodyError",
    "malformed_head",
    "read_body",
    "after_fork",
    "CHUNK",
    "SEND_BLOCK",
    "TransferHTTPConnection",
    "TransferHTTPSConnection",
]

#: Read size of the deadline-bounded reader and of body reads (bytes).
CHUNK = 64 * 1024
#: Seconds between looks at the send queue while an upload's reply is awaited.
_DRAIN_POLL = 0.05
#: A transfer's progress unit (bytes): a body sent or streamed moves at least this much per
#: ``timeout`` (:class:`TransferHTTPConnection`).
SEND_BLOCK = 64 * 1024
#: Default seconds an idle keep-alive socket is reused (httpx's ``keepalive_expiry`` is 5 s; NATs
#: and load balancers that forget idle flows after a few seconds make a shorter one safer).
DEFAULT_KEEPALIVE_SECS = 2.0


def keepalive_secs() -> float:
    """Seconds an idle keep-alive socket is reused, on both surfaces (api3 and REST):
    ``SGCONNECT_KEEPALIVE_SECS``, default 2 s; 0: no reuse."""
    from ..environ import KEEPALIVE_SECS
    from ..settings import number_from_environment

    return number_from_environment(
        KEEPALIVE_SECS, DEFAULT_KEEPALIVE_SECS, maximum=3600, zero_means="no reuse"
    )


#: A keep-alive connection idle this long (seconds) may have been forgotten by a NAT or load
#: balancer (no FIN, no RST) within the keep-alive limit: a request that must not be sent twice
#: goes on a new connection (:func:`max_idle`). A read is not probed for it: no first byte within
#: some window cannot be told from a slow answer, and a ShotGrid query may take seconds.
STALE_IDLE_SECS = 1.0


def max_idle(repeatable: bool) -> float:
    """Seconds an idle connection may be reused for a request: :func:`keepalive_secs`, and at
    most :data:`STALE_IDLE_SECS` for a request that must not be sent twice (a write), since a
    connection forgotten silently would leave its outcome unknown."""
    limit = keepalive_secs()
    return limit if repeatable else min(limit, STALE_IDLE_SECS)


class Deadline:
    """One deadline for a whole call: ``timeout`` seconds from now (``None`` or 0: none)."""

    __slots__ = ("timeout", "_end", "gateway_status", "gateway_answers")

    def __init__(self, timeout: Optional[float]):
        self.timeout = timeout or None
        self._end = time.monotonic() + timeout if timeout else None
        #: The last gateway status (502, 504) answered within this call, and how many came: the
        #: call's retries spent the deadline on them (reported as such, not as a silent site).
        self.gateway_status: Optional[int] = None
        self.gateway_answers = 0

    def remaining(self) -> Optional[float]:
        """Seconds left (``None``: no deadline).

        :raises TimeoutError: The deadline has passed.
        """
        if self._end is None:
            return None
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the call's deadline passed")
        return left


# -- deadline-bound sockets ------------------------------------------------------------------------


class _DeadlineReader(io.RawIOBase):
    """What ``http.client`` reads a reply from: each read waits only for what is left."""

    def __init__(self, owner_sock: _DeadlineSocket):
        self._owner_sock = owner_sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        sock = self._owner_sock._sock
        owner = self._owner_sock._owner
        while True:
            timeout = owner.deadline.remaining()
            if owner.drain_mark is None:
                sock.settimeout(timeout)
                received = sock.recv_into(buffer)
                break
            # An upload's data may still be leaving this machine: wait for the reply in short
            # slices, and while the send queue drains by SEND_BLOCK, start a new deadline.
            sock.settimeout(_DRAIN_POLL if timeout is None else min(timeout, _DRAIN_POLL))
            try:
                received = sock.recv_into(buffer)
                break
            except (TimeoutError, socket.timeout):
                left = _unsent(sock)
                if left is not None and owner.drain_mark - left >= SEND_BLOCK:
                    owner.drain_mark = left
                    owner.deadline = Deadline(owner.deadline.timeout)
        owner.drain_mark = None  # the reply came (or the connection ended)
        if owner.streaming:  # a stall or a trickle still ends a transfer's body
            owner.moved(received)
        return received

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._owner_sock._release()


class _DeadlineSocket:
    """A connected socket whose sends and reads are bounded by the owner's deadline.

    Like :meth:`socket.socket.makefile`, an open reader keeps the socket open until it is closed
    (``http.client`` closes the connection before the reply's body is read).
    """

    def __init__(self, sock: Any, owner: Any):
        self._sock = sock
        self._owner = owner
        self._readers = 0
        self._closing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def sendall(self, data: Any) -> None:
        self._sock.settimeout(self._owner.deadline.remaining())
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        self._readers += 1
        return io.BufferedReader(_DeadlineReader(self), CHUNK)

    def _release(self) -> None:
        self._readers -= 1
        if self._closing and self._readers <= 0:
            self._sock.close()

    def close(self) -> None:
        self._closing = True
        if self._readers <= 0:
            self._sock.close()


class _DeadlineMixin:
    #: The deadline of the call using the connection (set before each request).
    deadline: Deadline = Deadline(None)
    #: When the connection last finished a reply, or was opened (monotonic seconds).
    idle_since = 0.0
    #: While set, the bytes still in the send queue (Linux) when the deadline last began: the
    #: reply's deadline begins anew each time that queue drains by :data:`SEND_BLOCK` (an
    #: upload's data still leaving: :class:`TransferHTTPConnection`).
    drain_mark: Optional[int] = None
    #: While true, the reply's body is bounded by progress (:meth:`moved`), not as a whole.
    streaming = False
    #: Bytes moved since the current deadline began (:meth:`moved`).
    _moved = 0

    def moved(self, count: int) -> None:
        """``count`` more bytes of a transfer moved: each :data:`SEND_BLOCK` of them starts a
        new ``deadline`` of the same length (:class:`TransferHTTPConnection`)."""
        self._moved += count
        if self._moved >= SEND_BLOCK:
            self._moved = 0
            self.deadline = Deadline(self.deadline.timeout)

    def connect(self) -> None:
        self.timeout = self.deadline.remaining()  # type: ignore[attr-defined]
        super().connect()  # type: ignore[misc]
        self.sock = _DeadlineSocket(self.sock, self)  # type: ignore[has-type]
        self.idle_since = time.monotonic()

    def adopt(self, sock: Any) -> None:
        """Use ``sock``, already connected (and TLS-wrapped for https), as this connection's."""
        self.sock = _DeadlineSocket(sock, self)
        self.idle_since = time.monotonic()


class _HTTPConnection(_DeadlineMixin, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineMixin, http.client.HTTPSConnection):
    pass


#: A connection of :func:`open_connection` (``http.client``'s, with ``deadline`` and
#: ``idle_since``).
Connection = Any


class _TransferMixin(_DeadlineMixin):
    """A connection for a file transfer, bounded by progress rather than as a whole.

    ``timeout`` seconds (``None``: unbounded) for each step: connecting, then each
    :data:`SEND_BLOCK` bytes of the request sent; the reply, after a body over
    :data:`SEND_BLOCK`, read as soon as it comes, within one step of the last
    :data:`SEND_BLOCK` that left the system's send queue (the system keeps sending after the
    last ``send`` returned; Linux says how much); else, and through a proxy (whose buffers
    cannot be seen), within one step plus one per :data:`SEND_BLOCK` the send buffer can hold;
    with ``stream_body`` (a download), each :data:`SEND_BLOCK` of the reply's body once its head
    came (a trickle slower than that ends it). Built by urllib's ``do_open``, which passes
    ``timeout=`` (``default_timeout`` applies when the caller gave none).
    """

    def __init__(
        self,
        *args: Any,
        timeout: Any = None,
        stream_body: bool = False,
        default_timeout: Optional[float] = None,
        via_proxy: bool = False,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.via_proxy = via_proxy
        if not isinstance(timeout, (int, float)):  # urllib's "no timeout given"
            timeout = default_timeout
        self.step = timeout if timeout and timeout > 0 else None
        self.stream_body = stream_body
        self.deadline = Deadline(self.step)
        #: Bytes of the request sent.
        self.sent = 0

    def send(self, data: Any) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            super().send(data)  # type: ignore[misc]
            return
        view = memoryview(data).cast("B")
        for start in range(0, len(view), SEND_BLOCK):
            block = view[start : start + SEND_BLOCK]
            super().send(block)  # type: ignore[misc]
            self.sent += len(block)
            self.moved(len(block))

    def set_tunnel(self, *args: Any, **kwargs: Any) -> None:
        self.via_proxy = True
        super().set_tunnel(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        if self.step and self.sent > SEND_BLOCK:
            unsent = None if self.via_proxy else _unsent(self.sock)
            if unsent is not None:  # read the reply as it comes; the drain extends the wait
                self.drain_mark = unsent
                self.deadline = Deadline(self.step)
            else:  # as much as the send buffer can hold may still be on its way
                queued = min(self.sent, _send_buffer(self.sock))
                self.deadline = Deadline(self.step * (1 + -(-queued // SEND_BLOCK)))
        response = super().getresponse()  # type: ignore[misc]
        if self.stream_body:
            self.streaming = True
            self._moved = 0
            self.deadline = Deadline(self.step)
        return response


def _unsent(sock: Any) -> Optional[int]:
    """Bytes still in the socket's send queue (Linux ``TIOCOUTQ``: not yet sent or acknowledged),
    or ``None`` where the system does not say."""
    try:
        import fcntl
        import struct
        import termios

        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        return int(struct.unpack("i", raw)[0])
    except (ImportError, AttributeError, OSError, ValueError):
        return None


def _send_buffer(sock: Any) -> int:
    """The socket's send buffer (bytes): what may still be queued after ``sendall`` returned."""
    try:
        return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    except (OSError, AttributeError, TypeError, ValueError):
        return 4 * 1024 * 1024


class TransferHTTPConnection(_TransferMixin, http.client.HTTPConnection):
    """:class:`_TransferMixin` over plain HTTP."""


class TransferHTTPSConnection(_TransferMixin, http.client.HTTPSConnection):
    """:class:`_TransferMixin` over TLS."""


def new_connection(scheme: str, host: str, port: int, context: Any = None) -> Connection:
    """An unconnected :data:`Connection` to ``host:port`` (``context``: the TLS context)."""
    if scheme == "https":
        return _HTTPSConnection(host, port, context=context)
    return _HTTPConnection(host, port)


def open_connection(
    scheme: str,
    host: str,
    port: int,
    deadline: Deadline,
    *,
    context: Any = None,
    proxy: Optional[tuple[str, int]] = None,
    tunnel: bool = False,
    proxy_authorization: Optional[str] = None,
    tcp_first: bool = False,
) -> Connection:
    """A connected :data:`Connection` to the site ``host:port``, within ``deadline``.

    :param context: The :class:`ssl.SSLContext` of an https site
        (:func:`sgconnect.transport.proxies.ssl_context`), or a function that returns it.
    :param proxy: ``(host, port)`` of the proxy, or ``None``. An https site is reached through a
        ``CONNECT`` tunnel; a plain http one too when ``tunnel`` (api3), else the caller sends
        absolute-form requests to the proxy (REST).
    :param proxy_authorization: The ``Proxy-Authorization`` value for the tunnel, or ``None``.
    :param tcp_first: Without a proxy, open the TCP connection before calling ``context`` (which
        may import shotgun_api3 for its CA bundle): a background pre-connect overlaps both.
    :raises OSError: No connection (refused, DNS, TLS, the deadline passed).
    :raises http.client.HTTPException: The proxy refused the tunnel.
    """
    if tcp_first and proxy is None:
        return _open_tcp_first(scheme, host, port, deadline, context)
    if callable(context):
        context = context()
    conn = new_connection(scheme, *(proxy or (host, port)), context=context)
    if proxy is not None and (scheme == "https" or tunnel):
        headers = {"Proxy-Authorization": proxy_authorization} if proxy_authorization else {}
        conn.set_tunnel(host, port, headers=headers)
    conn.deadline = deadline
    try:
        conn.connect()
    except BaseException:
        conn.close()
        raise
    return conn


def _open_tcp_first(scheme: str, host: str, port: int, deadline: Deadline, context: Any) -> Any:
    sock = socket.create_connection((host, port), deadline.remaining())
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            if callable(context):
                context = context()
            sock.settimeout(deadline.remaining())
            sock = context.wrap_socket(sock, server_hostname=host)
        conn = new_connection(scheme, host, port, context)
    except BaseException:
        sock.close()
        raise
    conn.adopt(sock)
    conn.deadline = deadline
    return conn


# -- malformed replies ---------------------------------------------------------------------------


def malformed_head(error: BaseException) -> Optional[str]:
    """What was wrong with a reply head ``http.client`` could not parse: ``"long_line"`` (an
    over-long status or header line), ``"status_line"`` (a bad status line), ``"headers"``
    (malformed headers, or another ``http.client`` error), or ``None`` when ``error`` is no
    malformed reply: a lost connection (``RemoteDisconnected``, a ``BadStatusLine`` that is also
    a ``ConnectionError``), a timeout or any other ``OSError``."""
    if isinstance(error, ConnectionError) or not isinstance(error, http.client.HTTPException):
        return None
    if isinstance(error, http.client.LineTooLong):
        return "long_line"
    if isinstance(error, http.client.BadStatusLine):
        return "status_line"
    return "headers"


# -- the reply body --------------------------------------------------------------------------------


class BodyError(Exception):
    """A reply body that cannot be used: ``kind`` ``"too_big"`` (over the cap: ``announced`` is
    the ``Content-Length`` when that said so first) or ``"truncated"`` (``received`` bytes of
    ``announced``, ``None`` when unknown)."""

    def __init__(self, kind: str, received: int, announced: Optional[int]):
        super().__init__(kind)
        self.kind = kind
        self.received = received
        self.announced = announced


def read_body(response: Any, cap: int) -> bytes:
    """The whole body of ``response`` (an ``http.client.HTTPResponse``), at most ``cap`` bytes.

    :raises BodyError: Over ``cap``, or truncated (``http.client``'s ``read(amt)`` ends quietly
        at EOF whatever ``Content-Length`` said: the length is checked here).
    :raises OSError: The connection failed or the deadline passed while reading.
    :raises http.client.HTTPException: Another malformed body (a bad chunk size...).
    """
    length = (response.getheader("Content-Length") or "").strip()
    announced = int(length) if length.isdigit() else None
    if announced is not None and announced > cap:
        raise BodyError("too_big", 0, announced)
    chunks = []
    size = 0
    try:
        while True:
            chunk = response.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                raise BodyError("too_big", size, None)
            chunks.append(chunk)
    except http.client.IncompleteRead as exc:
        raise BodyError("truncated", size + len(exc.partial), announced) from None
    if announced is not None and size < announced:
        raise BodyError("truncated", size, announced)
    return b"".join(chunks)


# -- the per-thread connections -------------------------------------------------------------------


def idle_socket_closed(sock: Any) -> bool:
    """Whether an idle keep-alive socket was closed by the other side (or spoken on).

    A readable idle socket was closed by the site (EOF, TLS close_notify) or holds stray bytes;
    over TLS it may hold only housekeeping such as TLS 1.3 session tickets, which a non-blocking
    read consumes without a byte of data: that socket is still good.
    """
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    try:
        sock.setblocking(False)
        sock.recv(1)  # b"": closed; a byte: stray data on an idle connection
        return True
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except OSError:
        return True


_pools_lock = threading.Lock()
_pools: list[Pool] = []
_fork_hooks: list[Callable[[], None]] = []


class Pool:
    """One keep-alive :data:`Connection` per thread and key (a target: scheme, host, port,
    proxy), for one surface.

    :meth:`take` hands out a live one or ``None``; :meth:`put` keeps one for the thread's next
    request. :meth:`reset_all` makes every thread open new ones; a forked child drops its parent's.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._generation = 0
        with _pools_lock:
            _pools.append(self)

    def _conns(self) -> dict:
        local = self._local
        conns = getattr(local, "conns", None)
        if conns is None or local.generation != self._generation:
            for conn in (conns or {}).values():
                _close_quietly(conn)
            conns = local.conns = {}
            local.generation = self._generation
        return conns

    def take(
        self, key: Hashable, max_idle: Optional[float] = None
    ) -> tuple[Optional[Connection], bool]:
        """This thread's connection for ``key``, if it may be reused (open, not closed by the
        site, idle at most ``max_idle`` seconds), and whether a dead one was dropped."""
        conns = self._conns()
        conn = conns.get(key)
        if conn is None:
            return None, False
        if usable(conn, max_idle):
            return conn, False
        conn.close()
        del conns[key]
        return None, True

    def put(self, key: Hashable, conn: Connection) -> None:
        """Keep ``conn`` as this thread's connection for ``key``."""
        self._conns()[key] = conn

    def drop(self, key: Hashable, conn: Optional[Connection] = None) -> None:
        """Close this thread's connection for ``key`` (only if it is ``conn``, when given)."""
        conns = self._conns()
        held = conns.get(key)
        if held is not None and (conn is None or held is conn):
            del conns[key]
            held.close()
        elif conn is not None:
            conn.close()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._conns()

    def clear(self) -> None:
        """Close this thread's connections."""
        conns = self._conns()
        for conn in list(conns.values()):
            conn.close()
        conns.clear()

    def reset_all(self) -> None:
        """Close this thread's connections; every other thread opens new ones on its next use."""
        self.clear()
        self._generation += 1
        self._conns()

    def _forget_inherited(self) -> None:
        inherited = getattr(self._local, "conns", None) or {}
        self._local = threading.local()
        for conn in inherited.values():
            _close_quietly(conn)


def usable(conn: Connection, max_idle: Optional[float] = None) -> bool:
    """Whether an idle ``conn`` may be reused: open, idle at most ``max_idle`` seconds, and not
    closed by the site (:func:`idle_socket_closed`)."""
    if conn.sock is None:
        return False
    if max_idle is not None and time.monotonic() - conn.idle_since > max_idle:
        return False
    return not idle_socket_closed(conn.sock)


def _close_quietly(conn: Connection) -> None:
    try:
        conn.close()
    except OSError:
        pass


def after_fork(hook: Callable[[], None]) -> None:
    """Run ``hook`` in a forked child, after its pools dropped the parent's connections (to make
    a surface's own locks and caches anew)."""
    _fork_hooks.append(hook)


def _after_fork_in_child() -> None:
    """In a forked child: forget every connection of the parent. Closing the child's copy of a
    file descriptor sends nothing to the site (no TLS close_notify, no FIN while the parent holds
    it); the parent's socket stays open and its own. Locks another thread held are made anew."""
    global _pools_lock
    _pools_lock = threading.Lock()
    for pool in list(_pools):
        pool._forget_inherited()
    for hook in list(_fork_hooks):
        hook()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
