"""Start the dashboard: ``serve(run_dir, port=...)`` runs ``streamlit run dashboard/app.py``.

The server listens on 127.0.0.1 only; the run directory reaches the app in ``OGAD_RUN_DIR``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import webbrowser
from pathlib import Path

from ogad_core.errors import ConfigError

HOST = "127.0.0.1"
DEFAULT_PORT = 8501
APP_PATH = Path(__file__).resolve().parent / "app.py"


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a TCP server could bind ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A port the OS says is free now (it may be taken again before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def streamlit_command(port: int) -> list[str]:
    """The command line that serves the app on ``127.0.0.1:port``."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.address",
        HOST,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def _open_when_up(url: str, port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not port_is_free(port):
            webbrowser.open(url)
            return
        time.sleep(0.3)


def serve(
    run_dir: str | os.PathLike[str], *, port: int | None = None, open_browser: bool = False
) -> int:
    """Serve the review dashboard of ``run_dir`` until interrupted; returns the exit code.

    Args:
        run_dir: the run directory (a missing or incomplete one is explained on the page).
        port: TCP port on 127.0.0.1 (default 8501, or a free one when 8501 is taken).
        open_browser: open the page in the default web browser once the server is up.
    """
    run_path = Path(run_dir).expanduser().resolve()
    if port is None:
        port = DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()
    elif not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ConfigError(f"--port must be an integer in 1..65535, got {port!r}")
    elif not port_is_free(port):
        raise ConfigError(f"port {port} on {HOST} is already in use; choose another with --port")
    if not (run_path / "manifest.json").is_file():
        print(
            f"ogad dashboard: warning: {run_path} is not a finished run directory yet; "
            "the page will say what is missing",
            file=sys.stderr,
        )
    url = f"http://{HOST}:{port}"
    print(f"ogad dashboard: serving {run_path} at {url} (Ctrl+C to stop)", file=sys.stderr)
    env = dict(os.environ)
    env["OGAD_RUN_DIR"] = str(run_path)
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    if open_browser:
        threading.Thread(target=_open_when_up, args=(url, port), daemon=True).start()
    process = subprocess.Popen(streamlit_command(port), env=env)
    previous = None
    if threading.current_thread() is threading.main_thread():
        # a SIGTERM to this process stops the server too instead of orphaning it
        previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        code = process.wait()
        if code in (-signal.SIGTERM, -signal.SIGINT):
            return 0  # stopped on purpose
        return 128 - code if code < 0 else code
    except KeyboardInterrupt:
        _stop(process)
        return 0
    finally:
        _stop(process)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop(process: subprocess.Popen) -> None:
    """Terminate the server process (kill it after 10 s)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
