"""Servers that misbehave, for the fault tests: one that accepts and never answers, and a TCP
proxy that forwards to a real server until it is told to hang or to cut the connection.
"""

from __future__ import annotations

import select
import socket
import threading
from typing import Self


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte (a hung database or HTTP server)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self._listener.getsockname()[1]
        self._accepted: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._accepted.append(connection)  # held open, never read from or written to

    @property
    def accepted(self) -> int:
        return len(self._accepted)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        for connection in self._accepted:
            connection.close()
        self._listener.close()


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target``.

    ``cut_on(marker, occurrence, after=...)`` closes the connection, unforwarded, when the client
    sends ``marker`` for the ``occurrence``-th time since it sent ``after`` (e.g. the third
    ``COMMIT`` after the first ``INSERT INTO traces``: a store that drops the connection
    mid-batch, before that batch commits). ``hang()`` stops forwarding in both directions and
    leaves every connection open, new ones included (a store that stopped answering).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._hung = threading.Event()
        self._lock = threading.Lock()
        self._marker: bytes | None = None
        self._after: bytes | None = None
        self._occurrence = 0
        self.seen = 0
        self.cuts = 0
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)

    def cut_on(self, marker: bytes, occurrence: int, after: bytes | None = None) -> None:
        with self._lock:
            self._marker, self._occurrence, self._after, self.seen = marker, occurrence, after, 0

    def hang(self) -> None:
        self._hung.set()

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._sockets.append(client)
            if self._hung.is_set():
                continue  # accepted, never answered
            server = socket.create_connection(self.target)
            self._sockets.append(server)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _should_cut(self, data: bytes, tail: bytes) -> bool:
        with self._lock:
            if self._marker is None:
                return False
            window = tail + data
            if self._after is not None:
                start = window.find(self._after)
                if start < 0:
                    return False
                self._after, window, tail = None, window[start:], b""
            self.seen += window.count(self._marker) - tail.count(self._marker)
            if self.seen >= self._occurrence:
                self._marker = None
                self.cuts += 1
                return True
        return False

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        tail = b""
        try:
            while not self._stopped.is_set():
                if self._hung.is_set():
                    self._stopped.wait(0.1)
                    continue
                readable, _, _ = select.select([client, server], [], [], 0.1)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is client:
                        if self._should_cut(data, tail):
                            return
                        tail = data[-64:]
                        server.sendall(data)
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            if not self._hung.is_set():
                for sock in (client, server):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    sock.close()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass
        self._listener.close()
