"""TCP ports for servers that tests start (Streamlit, a dead address, a squatter): the one place that picks them.

`reserve_port()` asks the kernel for a free port (bind to port 0), then leaves it in TIME_WAIT by connecting to it once
and closing both ends. The kernel does not hand a port in TIME_WAIT to another `bind(("", 0))`, so a second test (or a
second test run on the same machine) asking for a free port meanwhile cannot get the same one; a server that binds with
SO_REUSEADDR (Tornado under Streamlit, PostgreSQL) can. This closes the usual race of "bind 0, read the port, close,
start the server": between the close and the server's bind, any other process could take it.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

LOOPBACK = "127.0.0.1"


def reserve_port(host: str = LOOPBACK) -> int:
    """A port on `host` that is free now and stays reserved for a server binding it with SO_REUSEADDR (about 60 s)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        # One accepted connection, closed by the server side first: the port's side of it sits in TIME_WAIT.
        with socket.create_connection((host, port)) as client:
            accepted, _ = listener.accept()
            accepted.close()
            client.recv(1)  # wait for the close to arrive, so the TIME_WAIT is on the listening side
    return port


def unused_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on (a "server that cannot be reached"): a reserved one nobody is given."""
    return reserve_port(host)


@contextlib.contextmanager
def occupied(port: int, host: str = LOOPBACK) -> Iterator[socket.socket]:
    """Something else listening on `port` while the block runs (e.g. a server's saved port taken meanwhile)."""
    squatter = socket.socket()
    # A stopped server's closed client connections may still sit in TIME_WAIT on that port: without SO_REUSEADDR the
    # bind itself fails ("Address already in use"), which is not what such a test is about.
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        squatter.bind((host, port))
        squatter.listen()
        yield squatter
    finally:
        squatter.close()
