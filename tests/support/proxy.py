"""A fault-injecting TCP proxy on loopback, put in front of the private Dovecot.

One background thread runs a poll() loop over every socket, so the number of
threads is fixed (one) whatever the number of connections, and every fault is
applied at a well-defined byte of the stream. Faults, on command:

* ``cut_all()``: close every connection now (FIN, or RST with ``reset=True``);
* ``stall(seconds)``: stop forwarding in both directions for a while;
* ``arm(...)``: a one-shot trigger that fires once ``count`` bytes have gone one
  way after a marker (``b"BODY[]<0> {"`` for mid-FETCH, ``b" APPEND "`` for
  mid-APPEND), and then resets, closes or stalls; ``reset_after_server_bytes``
  and ``reset_after_append_bytes`` are the two common cases;
* ``refuse(seconds)``: new connections are refused (ECONNREFUSED, as from a
  server that is down) while the port stays reserved; ``down()`` also cuts;
* ``heal()`` ends a stall or a refusal at once.

Usage::

    with FaultProxy(("127.0.0.1", endpoint.port)) as proxy:
        proxy.reset_after_server_bytes(500, after=b"BODY[]<0> {")
        ...  # point the client at proxy.host, proxy.port
        assert proxy.wait_fired(5)
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

__all__ = ["Action", "Direction", "FaultProxy", "ProxyStats"]

Direction = Literal["server", "client"]
"""Which side's bytes a trigger counts: ``server`` means server -> client."""
Action = Literal["reset", "close", "stall"]

_CHUNK = 65536
_MAX_BUFFER = 1 << 20  # stop reading a side while this much waits for its peer
_TICK = 0.05
_COMMAND_TIMEOUT = 5.0


@dataclass(frozen=True)
class ProxyStats:
    """A snapshot of what the proxy has seen and done."""

    connections: int
    active: int
    bytes_from_client: int
    bytes_from_server: int
    cuts: int
    """Connections closed or reset by ``cut_all``."""
    stalls: int
    resets: int
    """Connections reset by a trigger."""
    closes: int
    """Connections closed (FIN) by a trigger."""
    refusals: int
    """Refusal windows opened (each refuses every connection attempt within it)."""
    overflow: int
    """Connections turned away because ``max_connections`` were open."""
    upstream_failures: int
    fired: tuple[str, ...]

    @property
    def faults(self) -> int:
        return self.cuts + self.stalls + self.resets + self.closes + self.refusals


@dataclass
class _Trigger:
    direction: Direction
    count: int
    marker: bytes | None
    action: Action
    seconds: float
    label: str
    # per connection: bytes still allowed since the marker (None: marker not seen yet)
    remaining: dict[int, int | None] = field(default_factory=dict)
    tail: dict[int, bytes] = field(default_factory=dict)

    def cut_point(self, conn: int, chunk: bytes) -> int | None:
        """How many bytes of ``chunk`` may pass before the trigger fires, or None."""
        remaining = self.remaining.get(conn, None if self.marker else self.count)
        start = 0
        if remaining is None:
            assert self.marker is not None
            tail = self.tail.get(conn, b"")
            data = tail + chunk
            index = data.find(self.marker)
            if index < 0:
                keep = len(self.marker) - 1
                self.tail[conn] = data[-keep:] if keep else b""
                return None
            start = index - len(tail)  # negative when the marker began in an earlier chunk
            remaining = self.count - max(0, -start)
            start = max(0, start)
        if len(chunk) - start >= remaining:
            return start + max(0, remaining)
        self.remaining[conn] = remaining - (len(chunk) - start)
        return None


class _Pair:
    __slots__ = ("client", "closing", "ident", "server", "to_client", "to_server")

    def __init__(self, ident: int, client: socket.socket, server: socket.socket) -> None:
        self.ident = ident
        self.client = client
        self.server = server
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.closing = False


def _hard_close(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so the peer gets an RST rather than a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _soft_close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """A TCP proxy from ``host``:random port to ``upstream`` that injects faults on command."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        host: str = "127.0.0.1",
        max_connections: int = 32,
        connect_timeout: float = 2.0,
    ) -> None:
        self.upstream = upstream
        self.host = host
        self.port = 0
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._commands: list[tuple[Callable[[], object], threading.Event, list[object]]] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._listener: socket.socket | None = None
        self._placeholder: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._pairs: dict[int, _Pair] = {}
        self._next_ident = 0
        self._stalled_until = 0.0
        self._refuse_until = 0.0
        self._triggers: list[_Trigger] = []
        self._fired: list[str] = []
        self._fired_event = threading.Event()
        self._error: BaseException | None = None
        self._counts = {
            "connections": 0,
            "bytes_from_client": 0,
            "bytes_from_server": 0,
            "cuts": 0,
            "stalls": 0,
            "resets": 0,
            "closes": 0,
            "refusals": 0,
            "overflow": 0,
            "upstream_failures": 0,
        }

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> FaultProxy:
        if self._thread is not None:
            raise RuntimeError("proxy already started")
        self._listener = self._listen(0)
        self.port = int(self._listener.getsockname()[1])
        self._running = True
        self._thread = threading.Thread(
            target=self._loop, name=f"fault-proxy:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every socket and end the thread; safe to call twice."""
        thread = self._thread
        if thread is None:
            return
        self._running = False
        self._wake()
        thread.join(timeout=_COMMAND_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("fault proxy thread did not stop")
        self._thread = None
        for pair in list(self._pairs.values()):
            _soft_close(pair.client)
            _soft_close(pair.server)
        self._pairs.clear()
        for sock in (self._listener, self._placeholder, self._wake_r, self._wake_w):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self._listener = self._placeholder = None
        if self._error is not None:
            raise RuntimeError("fault proxy loop failed") from self._error

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- faults ---------------------------------------------------------------
    def cut_all(self, *, reset: bool = False) -> int:
        """Close every open connection now; returns how many were cut."""

        def cut() -> int:
            pairs = list(self._pairs.values())
            for pair in pairs:
                self._drop(pair, reset=reset)
            with self._lock:
                self._counts["cuts"] += len(pairs)
            self._note(f"cut {len(pairs)} connection(s){' with RST' if reset else ''}")
            return len(pairs)

        result = self._call(cut)
        assert isinstance(result, int)
        return result

    def stall(self, seconds: float) -> None:
        """Forward nothing, either way, for ``seconds`` (connections stay open)."""

        def begin() -> None:
            self._begin_stall(seconds, "stall on command")

        self._call(begin)

    def refuse(self, seconds: float) -> None:
        """Refuse new connections for ``seconds``; open connections are left alone."""

        def begin() -> None:
            self._begin_refusal(seconds)

        self._call(begin)

    def heal(self) -> None:
        """End any stall and any refusal now (armed triggers stay armed)."""

        def end() -> None:
            if time.monotonic() < self._stalled_until:
                self._note("stall ended on command")
            self._stalled_until = 0.0
            self._refuse_until = 0.0
            if self._listener is None:
                self._end_refusal()

        self._call(end)

    def down(self, seconds: float) -> int:
        """The server goes away: every connection cut, new ones refused for ``seconds``."""

        def begin() -> int:
            self._begin_refusal(seconds)
            pairs = list(self._pairs.values())
            for pair in pairs:
                self._drop(pair, reset=True)
            with self._lock:
                self._counts["cuts"] += len(pairs)
            self._note(f"down: cut {len(pairs)} connection(s)")
            return len(pairs)

        result = self._call(begin)
        assert isinstance(result, int)
        return result

    def arm(
        self,
        direction: Direction,
        count: int,
        *,
        after: bytes | None = None,
        action: Action = "reset",
        seconds: float = 0.0,
        label: str | None = None,
    ) -> None:
        """One shot: once ``count`` bytes went ``direction`` (counted from the start of
        ``after`` when given, else from now) on any connection, apply ``action``.

        The bytes past the limit are dropped for ``reset`` and ``close`` and held back
        for ``stall`` (``seconds`` long).
        """
        if count < 0:
            raise ValueError("count must be >= 0")
        if action == "stall" and seconds <= 0:
            raise ValueError("a stall needs seconds > 0")
        where = f" past {after!r}" if after else ""
        trigger = _Trigger(
            direction,
            count,
            after or None,
            action,
            seconds,
            label or f"{action} after {count} {direction} bytes{where}",
        )

        def add() -> None:
            self._fired_event.clear()
            self._triggers.append(trigger)

        self._call(add)

    def reset_after_server_bytes(self, count: int, *, after: bytes | None = None) -> None:
        """RST the connection once ``count`` bytes came from the server (mid-FETCH)."""
        self.arm("server", count, after=after, action="reset")

    def reset_after_append_bytes(self, count: int) -> None:
        """RST the connection ``count`` bytes into the client's next APPEND (mid-APPEND)."""
        self.arm("client", count, after=b" APPEND ", action="reset")

    def disarm(self) -> None:
        self._call(self._triggers.clear)

    def wait_fired(self, timeout: float) -> bool:
        """Wait until every armed trigger has fired."""
        return self._fired_event.wait(timeout)

    def stats(self) -> ProxyStats:
        with self._lock:
            c = dict(self._counts)
            fired = tuple(self._fired)
            active = len(self._pairs)
        return ProxyStats(
            connections=c["connections"],
            active=active,
            bytes_from_client=c["bytes_from_client"],
            bytes_from_server=c["bytes_from_server"],
            cuts=c["cuts"],
            stalls=c["stalls"],
            resets=c["resets"],
            closes=c["closes"],
            refusals=c["refusals"],
            overflow=c["overflow"],
            upstream_failures=c["upstream_failures"],
            fired=fired,
        )

    @property
    def stalled(self) -> bool:
        """Is forwarding held back right now?"""
        return time.monotonic() < self._stalled_until

    @property
    def refusing(self) -> bool:
        """Are new connections refused right now?"""
        return time.monotonic() < self._refuse_until or self._listener is None

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until no stall or refusal is in force (armed triggers stay armed)."""
        deadline = time.monotonic() + timeout
        while self.stalled or self.refusing:
            if time.monotonic() > deadline:
                raise TimeoutError("fault proxy still stalled or refusing")
            time.sleep(0.02)

    @property
    def armed(self) -> int:
        with self._lock:
            return len(self._triggers)

    # -- internals: commands ---------------------------------------------------
    def _call(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` on the loop thread (so it never races the forwarding) and wait."""
        if self._thread is None or not self._running:
            raise RuntimeError("proxy is not running")
        done = threading.Event()
        result: list[object] = []
        with self._lock:
            self._commands.append((fn, done, result))
        self._wake()
        if not done.wait(_COMMAND_TIMEOUT):
            raise RuntimeError("fault proxy did not run the command in time")
        if result and isinstance(result[0], BaseException):
            raise RuntimeError("fault proxy command failed") from result[0]
        return result[0] if result else None

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _note(self, what: str) -> None:
        with self._lock:
            self._fired.append(f"{time.monotonic():.3f} {what}")

    def _listen(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # SO_REUSEPORT lets a bound, non-listening placeholder keep the port while
        # the listener is closed, which is what makes refusals real ECONNREFUSEDs.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, port))
        sock.listen(64)
        sock.setblocking(False)
        return sock

    def _begin_stall(self, seconds: float, why: str) -> None:
        self._stalled_until = max(self._stalled_until, time.monotonic() + seconds)
        with self._lock:
            self._counts["stalls"] += 1
        self._note(f"{why}: {seconds:.1f}s")

    def _begin_refusal(self, seconds: float) -> None:
        self._refuse_until = max(self._refuse_until, time.monotonic() + seconds)
        if self._listener is not None:
            placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            placeholder.bind((self.host, self.port))
            self._placeholder = placeholder
            self._listener.close()
            self._listener = None
        with self._lock:
            self._counts["refusals"] += 1
        self._note(f"refusing connections for {seconds:.1f}s")

    def _end_refusal(self) -> None:
        self._listener = self._listen(self.port)
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        self._note("accepting connections again")

    # -- internals: the loop -----------------------------------------------------
    def _loop(self) -> None:
        try:
            while self._running:
                self._run_commands()
                now = time.monotonic()
                if self._listener is None and now >= self._refuse_until:
                    self._end_refusal()
                self._step(now)
        except BaseException as err:  # surfaced by stop()
            self._error = err
            with self._lock:
                for _fn, done, result in self._commands:
                    result.append(err)
                    done.set()
                self._commands.clear()

    def _run_commands(self) -> None:
        with self._lock:
            commands, self._commands = self._commands, []
        for fn, done, result in commands:
            try:
                result.append(fn())
            except Exception as err:
                result.append(err)
            done.set()

    def _step(self, now: float) -> None:
        stalled = now < self._stalled_until
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if self._listener is not None:
            poller.register(self._listener, select.POLLIN)
        by_fd: dict[int, tuple[_Pair, bool]] = {}
        if not stalled:
            for pair in self._pairs.values():
                for sock, is_client, inbox, outbox in (
                    (pair.client, True, pair.to_server, pair.to_client),
                    (pair.server, False, pair.to_client, pair.to_server),
                ):
                    mask = 0
                    if len(inbox) < _MAX_BUFFER and not pair.closing:
                        mask |= select.POLLIN
                    if outbox:
                        mask |= select.POLLOUT
                    if mask:
                        poller.register(sock, mask)
                        by_fd[sock.fileno()] = (pair, is_client)
        timeout = _TICK
        if stalled:
            timeout = min(timeout, max(0.0, self._stalled_until - now))
        if self._listener is None:
            timeout = min(timeout, max(0.0, self._refuse_until - now))
        for fd, mask in poller.poll(timeout * 1000):
            if fd == self._wake_r.fileno():
                with contextlib.suppress(BlockingIOError):
                    self._wake_r.recv(4096)
                continue
            if self._listener is not None and fd == self._listener.fileno():
                self._accept()
                continue
            entry = by_fd.get(fd)
            if entry is None:
                continue
            pair, is_client = entry
            if pair.ident not in self._pairs:
                continue  # dropped earlier in this round
            if time.monotonic() < self._stalled_until:
                break  # a trigger started a stall: forward nothing more
            if mask & (select.POLLIN | select.POLLHUP | select.POLLERR):
                self._read(pair, is_client)
            if pair.ident in self._pairs and mask & select.POLLOUT:
                self._write(pair, is_client)
        for pair in list(self._pairs.values()):
            if pair.closing and not pair.to_client and not pair.to_server:
                self._drop(pair, reset=False)

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            with self._lock:
                self._counts["connections"] += 1
                full = len(self._pairs) >= self.max_connections
            if full:
                with self._lock:
                    self._counts["overflow"] += 1
                _hard_close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=self.connect_timeout)
            except OSError:
                with self._lock:
                    self._counts["upstream_failures"] += 1
                _hard_close(client)
                continue
            for sock in (client, server):
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._next_ident += 1
            with self._lock:
                self._pairs[self._next_ident] = _Pair(self._next_ident, client, server)

    def _read(self, pair: _Pair, from_client: bool) -> None:
        sock = pair.client if from_client else pair.server
        try:
            chunk = sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            # The peer reset its side: pass the reset on to the other side.
            self._drop(pair, reset=err.errno in {errno.ECONNRESET, errno.EPIPE})
            return
        if not chunk:
            pair.closing = True  # flush what is buffered, then close both sides
            return
        with self._lock:
            self._counts["bytes_from_client" if from_client else "bytes_from_server"] += len(chunk)
        direction: Direction = "client" if from_client else "server"
        for trigger in list(self._triggers):
            if trigger.direction != direction:
                continue
            cut = trigger.cut_point(pair.ident, chunk)
            if cut is None:
                continue
            self._triggers.remove(trigger)
            self._queue(pair, from_client, chunk[:cut])
            self._fire(trigger, pair, from_client, chunk[cut:])
            return
        self._queue(pair, from_client, chunk)

    @staticmethod
    def _queue(pair: _Pair, from_client: bool, data: bytes) -> None:
        (pair.to_server if from_client else pair.to_client).extend(data)

    def _fire(self, trigger: _Trigger, pair: _Pair, from_client: bool, rest: bytes) -> None:
        self._note(f"{trigger.label} (connection {pair.ident})")
        if trigger.action == "stall":
            self._queue(pair, from_client, rest)
            self._begin_stall(trigger.seconds, trigger.label)
        else:
            # Counted first, so a peer that sees the reset also sees it counted.
            with self._lock:
                self._counts["resets" if trigger.action == "reset" else "closes"] += 1
            # Best effort: what was allowed through is sent before the connection dies.
            self._flush_now(pair)
            self._drop(pair, reset=trigger.action == "reset")
        if not self._triggers:
            self._fired_event.set()

    @staticmethod
    def _flush_now(pair: _Pair) -> None:
        for sock, buffer in ((pair.server, pair.to_server), (pair.client, pair.to_client)):
            while buffer:
                try:
                    sent = sock.send(buffer)
                except (BlockingIOError, InterruptedError):
                    waiter = select.poll()
                    waiter.register(sock, select.POLLOUT)
                    if not waiter.poll(500):
                        break
                    continue
                except OSError:
                    break
                del buffer[:sent]

    def _write(self, pair: _Pair, to_client: bool) -> None:
        sock, buffer = (pair.client, pair.to_client) if to_client else (pair.server, pair.to_server)
        if not buffer:
            return
        try:
            sent = sock.send(buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(pair, reset=True)
            return
        del buffer[:sent]

    def _drop(self, pair: _Pair, *, reset: bool) -> None:
        with self._lock:
            self._pairs.pop(pair.ident, None)
        for trigger in self._triggers:
            trigger.remaining.pop(pair.ident, None)
            trigger.tail.pop(pair.ident, None)
        close = _hard_close if reset else _soft_close
        close(pair.client)
        close(pair.server)
