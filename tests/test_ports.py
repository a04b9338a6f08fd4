"""tests/ports.py, the one place tests get ports from: a reserved port stays out of other hands until its server binds it."""

from __future__ import annotations

import socket

import pytest

from tests.ports import occupied, reserve_port, unused_port


def test_a_reserved_port_is_not_handed_to_anyone_asking_for_a_free_port():
    port = reserve_port()
    for _ in range(500):
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            assert other.getsockname()[1] != port


def test_a_reserved_port_refuses_a_plain_bind_but_takes_a_server_binding_with_reuseaddr():
    port = reserve_port()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    with socket.socket() as server:  # what Tornado (Streamlit) and PostgreSQL do
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()


def test_nothing_answers_on_an_unused_port():
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", unused_port()), timeout=10).close()


def test_an_occupied_port_is_listening_until_the_block_ends():
    port = reserve_port()
    with occupied(port):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
