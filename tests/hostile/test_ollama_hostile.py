"""Hostile Ollama servers: not JSON, JSON the client's models refuse, integers past 4,300
digits, replies past the size cap, servers that trickle bytes or never answer.

Ollama cannot run on the Linux test machine, so these are small servers on 127.0.0.1 written
here, each misbehaving in one way, and the real `ollama` client and our code talk to them
over real sockets. The import and the benchmark must end in one line naming the server, and
within the overall deadline, however the server behaves.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from forgeplanner.cli.main import main

Behaviour = Callable[[socket.socket], None]


def _reply(body: bytes, ctype: str = "application/json") -> Behaviour:
    def serve(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype.encode() + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )  # fmt: skip

    return serve


def _trickle(conn: socket.socket) -> None:
    """One byte of the status line every 0.2 s: each read is fast, the reply never ends."""
    for b in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
        conn.sendall(bytes([b]))
        time.sleep(0.2)


def _silent(conn: socket.socket) -> None:
    time.sleep(30)


def _huge(conn: socket.socket) -> None:
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"a": "')
    chunk = b"x" * (1 << 20)
    for _ in range(80):  # 80 MiB, past the 64 MiB cap
        conn.sendall(chunk)


@contextmanager
def server(routes: dict[str, Behaviour]) -> Iterator[str]:
    """An HTTP/1.1 server on 127.0.0.1; `routes` maps a request path to its behaviour."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            path = head.split(b" ", 2)[1].decode()
            try:
                routes.get(path, _reply(b'{"error": "not found"}'))(conn)
            except OSError:
                pass

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join(timeout=5)
        srv.close()


BIG = b"9" * 5000


@pytest.mark.parametrize(
    ("name", "body", "error"),
    [
        ("not JSON", b"<html>hello</html>", r"not an /api/show reply"),
        ("a list", b"[1, 2, 3]", r"not an /api/show reply"),
        ("wrong types", b'{"details": "x", "model_info": 5}', r"not an /api/show reply"),
        ("huge integer", b'{"model_info": {"llama.block_count": ' + BIG + b"}}", r"not an /api"),
        ("empty model_info", b'{"model_info": {}}', r"model_info.*missing or empty"),
    ],
)
def test_import_from_a_broken_ollama_is_one_line(name, body, error, capsys) -> None:
    import re

    with server({"/api/show": _reply(body)}) as url:
        code = main(["models", "import", "--ollama", "m", "--url", url, "--no-save"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(error, err), err


@pytest.mark.parametrize(("behaviour", "limit_s"), [(_trickle, 1.5), (_silent, 1.5), (_huge, 10)])
def test_show_has_an_overall_deadline_and_a_size_cap(behaviour, limit_s) -> None:
    from forgeplanner.errors import DataError
    from models_db.importers.ollama_show import fetch_ollama_show

    with server({"/api/show": behaviour}) as url:
        t0 = time.monotonic()
        with pytest.raises(DataError) as info:
            fetch_ollama_show("m", url, timeout=1.0)
        took = time.monotonic() - t0
    assert took < limit_s + 2.0, f"{behaviour.__name__}: {took:.1f} s"
    text = str(info.value)
    assert "\n" not in text
    assert ("within 1 s" in text or "timed out" in text) or "larger than" in text, text


STREAM_NOT_JSON = b"this is not json\n"
STREAM_BIG_INT = b'{"done": true, "eval_count": ' + BIG + b"}\n"
VERSION = _reply(b'{"version": "0.5.0"}')


@pytest.mark.parametrize(
    ("generate", "error"),
    [
        (_reply(STREAM_NOT_JSON, "application/x-ndjson"), r"not Ollama's API JSON"),
        (_reply(STREAM_BIG_INT, "application/x-ndjson"), r"not Ollama's API JSON"),
        (_reply(b"[1]\n", "application/x-ndjson"), r"not Ollama's API JSON"),
        (_trickle, r"no complete reply within 2 s"),
    ],
)
def test_benchmark_against_a_broken_ollama_is_one_line(generate, error, capsys, monkeypatch):
    import re

    from forgeplanner.bench import ollama_runner

    monkeypatch.setattr(ollama_runner, "REQUEST_DEADLINE_S", 2.0)
    with server({"/api/version": VERSION, "/api/generate": generate}) as url:
        t0 = time.monotonic()
        code = main(["bench", "run", "ollama", "--model", "m", "--url", url, "-r", "1"])
        took = time.monotonic() - t0
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert code == 2 and len(err) == 1, err
    assert re.search(error, err[0]), err[0]
    assert took < 20, took
