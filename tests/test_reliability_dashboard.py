"""Reliability, class 5 (issue 22): the dashboard's server — its WebSocket accepts only its own
origin, it never outlives `ogad dashboard` (kill -9 included), and an image it cannot thumbnail
is one line on its card."""

from __future__ import annotations

import base64
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability_helpers import ROOT


def _upgrade_status(port: int, origin: str | None) -> str:
    """The status line of a WebSocket upgrade to 127.0.0.1:port sent with ``Origin: origin``."""
    host = f"127.0.0.1:{port}"
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /_stcore/stream HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: streamlit",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return sock.recv(200).decode(errors="replace").splitlines()[0]


def _up(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/_stcore/health")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _wait(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def _start(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    """`ogad dashboard` on a small run (its own session), once it answers."""
    from dashboard.serve import free_port
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=20)
    port = free_port()
    parent = subprocess.Popen(
        [sys.executable, "-m", "ogad_core.cli", "dashboard", str(run), "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait(lambda: _up(port) or parent.poll() is not None, 90, "the dashboard did not start")
    return parent, port


def _stop(parent: subprocess.Popen) -> None:
    try:
        os.killpg(parent.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_the_websocket_accepts_only_its_own_origin(tmp_path: Path) -> None:
    parent, port = _start(tmp_path)
    try:
        assert " 101 " in _upgrade_status(port, f"http://127.0.0.1:{port}")
        assert " 101 " in _upgrade_status(port, None)  # not a browser: the Host check holds
        for other in ("http://localhost:9999", "http://evil.example", "null"):
            assert " 101 " not in _upgrade_status(port, other), other
    finally:
        _stop(parent)


def test_the_server_dies_with_ogad_dashboard_on_kill_9(tmp_path: Path) -> None:
    from dashboard.serve import port_is_free

    parent, port = _start(tmp_path)
    try:
        os.kill(parent.pid, signal.SIGKILL)  # `ogad dashboard` only, not its server
        parent.wait()
        _wait(lambda: port_is_free(port), 20, "the server outlived `ogad dashboard`")
    finally:
        _stop(parent)


def test_an_image_too_large_to_thumbnail_is_one_line_on_its_card(tmp_path, monkeypatch) -> None:
    """A picture above PIL's decompression-bomb limit, its thumbnail gone: the card says so in
    one line naming the fix (PIL's limit lowered so that a small real file crosses it)."""
    import pandas as pd
    from PIL import Image

    from dashboard.run_view import load_card_image
    from ogad_core.data.sources import run_data_roots
    from ogad_core.run.rundir import RunDir
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=12)
    ref = str(pd.read_parquet(run / "samples.parquet")["ref"].iloc[0])
    target = RunDir(run).resolve_ref(ref, run_data_roots(RunDir(run)))
    assert target is not None
    Image.new("L", (300, 300), 7).save(target, format="PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 90,000 px > 2 x the limit: a bomb
    picture, problem = load_card_image(RunDir(run), ref)
    assert picture is None and problem is not None
    assert problem.startswith("image too large to show") and "\n" not in problem
