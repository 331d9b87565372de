"""Network failures reach callers as ``ApiError`` (review finding I8): a closed port, a server
that accepts and never answers, and one that cuts its answer short, all on 127.0.0.1.  Every
call the controller, the leader election and the cache make is tried."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler_extender.kube.client import ApiError, KubeClient, connect

T = 0.2  # seconds: every call's timeout

CALLS: dict[str, Callable[[KubeClient], Any]] = {
    "list": lambda k: k.list("nodes", limit=1, continue_token="", timeout=T),
    "list_pods": lambda k: k.list_pods("ns", limit=1, continue_token="", timeout=T),
    "get_pod": lambda k: k.get_pod("ns", "p", timeout=T),
    "create_pod": lambda k: k.create_pod("ns", {"metadata": {"name": "p"}}, timeout=T),
    "delete_pod": lambda k: k.delete_pod("ns", "p", uid="u", grace_period_seconds=0, timeout=T),
    "bind": lambda k: k.bind("ns", "p", "u", "node", timeout=T),
    "get_lease": lambda k: k.get_lease("ns", "l", timeout=T),
    "create_lease": lambda k: k.create_lease("ns", {"metadata": {"name": "l"}}, timeout=T),
    "replace_lease": lambda k: k.replace_lease("ns", "l", {"metadata": {"name": "l"}}, timeout=T),
    "get_owner": lambda k: k.get_owner("Deployment", "ns", "d", timeout=T),
    "get_daemonset": lambda k: k.get_daemonset("ns", "d", timeout=T),
    "watch": lambda k: k.watch("pods", resource_version="1", timeout_seconds=5, read_timeout=T),
    "watch_pods": lambda k: k.watch_pods(
        "ns", resource_version="1", timeout_seconds=5, read_timeout=T
    ),
}


def client_for(port: int, tmp_path: Path) -> KubeClient:
    config = tmp_path / "kubeconfig"
    config.write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "c",'
        f' "clusters": [{{"name": "c", "cluster": {{"server": "http://127.0.0.1:{port}"}}}}],'
        ' "users": [{"name": "u", "user": {"token": "t"}}],'
        ' "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}',
        encoding="utf-8",
    )
    client = connect(kubeconfig=config)
    assert client is not None
    return client


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    yield port  # nothing listens there now: connections are refused


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections (the kernel does, from the backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


@contextlib.contextmanager
def cut_short_server() -> Iterator[int]:
    """Answers every request with headers promising 1000 bytes, sends 10 and hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b'Content-Length: 1000\r\n\r\n{"items":['
                    )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        thread.join(2)


SERVERS = {"refused": closed_port, "never-answers": silent_server, "cut-short": cut_short_server}


# A watch returns once the headers are in (its stream is read later, by the informer), so a
# body cut short is not its failure.
CASES = [
    pytest.param(s, c, id=f"{c}-{s}")
    for s in SERVERS
    for c in CALLS
    if not (s == "cut-short" and c.startswith("watch"))
]


@pytest.mark.parametrize(("server", "call"), CASES)
def test_network_failures_are_api_errors(server: str, call: str, tmp_path: Path) -> None:
    with SERVERS[server]() as port:
        kube = client_for(port, tmp_path)
        try:
            with pytest.raises(ApiError) as caught:
                CALLS[call](kube)
        finally:
            kube.close()
    error = caught.value
    assert error.code == 0 and error.network, error
    assert str(error).startswith("0 NetworkError: cannot reach the API server: ")
    expected = {
        "refused": "refused",
        "never-answers": "timed out",
        "cut-short": "connection broken",
    }
    assert expected[server].lower() in str(error).lower(), str(error)
