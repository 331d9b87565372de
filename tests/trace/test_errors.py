"""A Prometheus that fails: a tiny HTTP server on 127.0.0.1 answers each way Prometheus (or the
proxy in front of it) can fail.  The command must say so in one line, exit non-zero and leave no
file behind (nor touch an existing one)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from scheduler_extender.trace.cli import main

#: path -> (status, content type, body, delay seconds)
Answer = tuple[int, str, bytes, float]


class Handler(BaseHTTPRequestHandler):
    answer: Answer = (200, "application/json", b"{}", 0.0)
    seen: list[dict[str, str]] = []  # noqa: RUF012

    #: The answer to a bare range vector (``x{...}[1d]``), when set.
    range_answer: Answer | None = None

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query).get("query", [""])[0]
        bare_range = query.endswith("]") and query.startswith("kube_pod_created")
        answer = self.range_answer if bare_range and self.range_answer else self.answer
        status, kind, body, delay = answer
        type(self).seen.append(dict(self.headers.items()))
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[Handler]]]:
    handler = type("H", (Handler,), {"seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _error(kind: str, text: str) -> bytes:
    return f'{{"status":"error","errorType":"{kind}","error":"{text}"}}'.encode()


CASES = {
    "400": (
        (400, "application/json", _error("bad_data", "invalid parameter \\\"query\\\""), 0.0),
        "HTTP 400 on http://127.0.0.1:PORT/api/v1/query: invalid parameter",
    ),
    "401-proxy": (
        (401, "text/html", b"<html><body>Unauthorized</body></html>", 0.0),
        "HTTP 401 on http://127.0.0.1:PORT/api/v1/query: <html><body>Unauthorized",
    ),
    "503-proxy": (
        (503, "text/html", b"<html>503 Service Temporarily Unavailable</html>", 0.0),
        "HTTP 503 on http://127.0.0.1:PORT/api/v1/query: <html>503 Service",
    ),
    # Prometheus's own --query.timeout: split down to the smallest window, then give up.
    "503-query-timeout": (
        (503, "application/json", _error("timeout", "query timed out in expression evaluation"),
         0.0),
        "Prometheus refuses even a [0-9]+ s window \\(query timed out in expression evaluation\\)",
    ),
    "500-empty": ((500, "text/plain", b"", 0.0), "HTTP 500 on .*: \\(empty body\\)"),
    "not-json": (
        (200, "text/html", b"<html>Sign in</html>", 0.0),
        "did not answer with JSON \\(is --url the Prometheus server, not a login page\\?\\)",
    ),
    "wrong-shape": (
        (200, "application/json", b'{"status":"success","data":{"resultType":"matrix",'
         b'"result":[]}}', 0.0),
        "expected vector, got matrix",
    ),
    "timeout": (
        (200, "application/json", b"{}", 2.0),
        "did not answer within 0.3 s \\(--timeout\\)",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_failures_are_one_line_with_no_file_left(
    server: tuple[str, type[Handler]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    url, handler = server
    handler.answer, message = CASES[case]
    out = tmp_path / "trace.csv"
    out.write_text("the previous trace\n", encoding="utf-8")
    code = main(
        ["prometheus", "--url", url, "--since", "2d", "--out", str(out), "--timeout", "0.3s"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("scheduler-extender trace: error: ")
    port = url.rsplit(":", 1)[1]
    assert re.search(message.replace("PORT", port), err), err
    assert out.read_text(encoding="utf-8") == "the previous trace\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.csv"]


def test_unreachable_prometheus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.trace.promserver import free_port

    url = f"http://127.0.0.1:{free_port()}"
    code = main(["prometheus", "--url", url, "--since", "1d", "--out", str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert code == 1 and f"cannot reach Prometheus at {url}" in err
    assert list(tmp_path.iterdir()) == []


def test_bearer_token_is_sent(server: tuple[str, type[Handler]], tmp_path: Path) -> None:
    url, handler = server
    empty = b'{"status":"success","data":{"resultType":"%s","result":[]}}'
    handler.answer = (200, "application/json", empty % b"vector", 0.0)
    handler.range_answer = (200, "application/json", empty % b"matrix", 0.0)
    token = tmp_path / "token"
    token.write_text("s3cret\n", encoding="utf-8")
    out = tmp_path / "t.csv"
    code = main(["prometheus", "--url", url + "/", "--since", "1d", "--out", str(out),
                 "--bearer-token-file", str(token)])  # fmt: skip
    assert code == 0
    assert handler.seen and all(h.get("Authorization") == "Bearer s3cret" for h in handler.seen)
    assert out.read_text(encoding="utf-8").splitlines()[0].startswith("arrival,end,cpu,memory")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "soon"], "--since: expected 'now', a duration"),
        (["--since", "2030-01-02", "--until", "2030-01-01"], "--since .* must be before --until"),
        (["--since", "1d", "--selector", "component!=hub"], "--selector: expected label=value"),
        (
            ["--since", "1d", "--bearer-token-file", "/nonexistent/t"],
            "--bearer-token-file: No such",
        ),
        (["--since", "1d", "--ca-file", "/nonexistent/ca.pem"], "--ca-file: file not found"),
        (["--since", "1d", "--timeout", "0"], "--timeout: must be > 0"),
        (["--since", "1d", "--window", "2m"], "--window: at least 600 s"),
    ],
    ids=["since", "order", "selector", "token", "ca", "timeout", "window"],
)
def test_bad_options_name_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "t.csv"
    code = main(["prometheus", "--url", "http://127.0.0.1:9", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 1 and re.search(message, err), err
    assert not out.exists()
