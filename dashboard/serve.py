"""Start the dashboard: ``serve(run_dir, port=..., host=...)`` runs ``streamlit run app.py``.

The server listens on 127.0.0.1 unless ``host`` says otherwise (an explicit choice that prints
a warning); the run directory reaches the app in ``OGAD_RUN_DIR``. Against DNS rebinding every
HTTP request and WebSocket whose ``Host`` header is not in the allowed-hosts list (127.0.0.1,
localhost, ::1 and the name given with ``--host``) is refused with 400: the server runs through
:func:`launch`, which adds starlette's ``TrustedHostMiddleware`` in front of Streamlit, and
Streamlit's own ``server.allowedHosts`` checks the WebSocket again. A WebSocket whose ``Origin``
is not the page's own (scheme://Host) is refused too (:class:`SameOriginWebSocket`): another
site or another local server (``http://localhost:9999``) cannot drive the review session.

The server is a child of ``ogad dashboard``; it dies with it, however it dies (``kill -9``
included: ``PR_SET_PDEATHSIG`` on Linux), so no orphan keeps the port.
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
from typing import Any
from urllib.parse import urlsplit

from ogad_core.errors import ConfigError

HOST = "127.0.0.1"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
DEFAULT_PORT = 8501
APP_PATH = Path(__file__).resolve().parent / "app.py"
#: the pid of `ogad dashboard`, handed to the server (which dies with it)
PARENT_PID_ENV = "OGAD_DASHBOARD_PARENT"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a TCP server could bind ``host:port`` now."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A port the OS says is free now (it may be taken again before use)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def allowed_hosts(host: str = HOST) -> list[str]:
    """Host names the server answers to: the local names, plus ``host`` (and, for a wildcard
    address such as 0.0.0.0, this machine's host names)."""
    names = list(LOCAL_HOSTS)
    extra = [host]
    if host in WILDCARD_HOSTS:
        extra = [socket.gethostname(), socket.getfqdn()]
    for name in extra:
        if name and name.lower() not in names:
            names.append(name.lower())
    return names


def streamlit_command(port: int, host: str = HOST) -> list[str]:
    """The command line that serves the app on ``host:port`` (through :func:`launch`)."""
    hosts = allowed_hosts(host)
    allowed = [arg for name in hosts for arg in ("--server.allowedHosts", name)]
    return [
        sys.executable,
        "-m",
        "dashboard.serve",
        ",".join(hosts),
        "run",
        str(APP_PATH),
        "--server.address",
        host,
        "--server.port",
        str(port),
        *allowed,
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


def _check_host(host: str) -> str:
    """``host`` stripped, or ConfigError when this machine cannot bind it."""
    host = str(host).strip().strip("[]")
    if not host:
        raise ConfigError("--host is empty; use 127.0.0.1 (the default) or an address to bind")
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ConfigError(f"--host {host!r} is not an address or name of this machine") from None
    if host not in LOCAL_HOSTS:
        print(
            f"ogad dashboard: warning: --host {host} makes the dashboard (the run's data and its "
            "review decisions) reachable from other machines, without a password",
            file=sys.stderr,
        )
    return host


def serve(
    run_dir: str | os.PathLike[str],
    *,
    port: int | None = None,
    open_browser: bool = False,
    host: str = HOST,
) -> int:
    """Serve the review dashboard of ``run_dir`` until interrupted; returns the exit code.

    Args:
        run_dir: the run directory (a missing or incomplete one is explained on the page).
        port: TCP port (default 8501, or a free one when 8501 is taken).
        open_browser: open the page in the default web browser once the server is up.
        host: the address to bind (default 127.0.0.1; anything else prints a warning).
    """
    run_path = Path(run_dir).expanduser().resolve()
    if port is not None and (
        not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535
    ):
        raise ConfigError(f"--port must be an integer in 1..65535, got {port!r}")
    host = _check_host(host)
    if port is None:
        port = DEFAULT_PORT if port_is_free(DEFAULT_PORT, host) else free_port(host)
    elif not port_is_free(port, host):
        raise ConfigError(f"port {port} on {host} is already in use; choose another with --port")
    if not (run_path / "manifest.json").is_file():
        print(
            f"ogad dashboard: warning: {run_path} is not a finished run directory yet; "
            "the page will say what is missing",
            file=sys.stderr,
        )
    shown = HOST if host in WILDCARD_HOSTS else (f"[{host}]" if ":" in host else host)
    url = f"http://{shown}:{port}"
    print(f"ogad dashboard: serving {run_path} at {url} (Ctrl+C to stop)", file=sys.stderr)
    env = dict(os.environ)
    env["OGAD_RUN_DIR"] = str(run_path)
    package_root = str(APP_PATH.parent.parent)  # `python -m dashboard.serve` finds the package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    env[PARENT_PID_ENV] = str(os.getpid())  # the server dies with this process
    if open_browser:
        threading.Thread(target=_open_when_up, args=(url, port), daemon=True).start()
    process = subprocess.Popen(streamlit_command(port, host), env=env)
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


class SameOriginWebSocket:
    """ASGI middleware: a WebSocket handshake whose ``Origin`` header names another origin than
    the one the request is addressed to (its ``Host``) is closed before it is accepted (the
    client sees 403). Plain HTTP and handshakes without an ``Origin`` pass."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "websocket" and not same_origin(scope.get("headers") or []):
            await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


def same_origin(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request's ``Origin`` (if any) is ``http(s)://`` + its ``Host``."""
    values = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
    origin, host = values.get("origin"), values.get("host", "")
    if origin is None:
        return True
    parsed = urlsplit(origin)
    return parsed.scheme in ("http", "https") and parsed.netloc.lower() == host.lower()


def die_with_parent(parent_pid: int | None) -> None:
    """Ask the kernel to SIGTERM this process when its parent dies (Linux); exit now when the
    parent is already gone."""
    if not sys.platform.startswith("linux") or not parent_pid:
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # died before the request took effect
        sys.exit(0)


def launch(hosts: list[str], streamlit_args: list[str]) -> None:
    """Run Streamlit's command line with a Host-header allow-list on every HTTP request and
    WebSocket (starlette's ``TrustedHostMiddleware``, first in the middleware stack)."""
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from streamlit.web import cli
    from streamlit.web.server.starlette import starlette_app

    from dashboard.page_head import PageHead

    streamlit_middleware = starlette_app.create_streamlit_middleware
    hosts = [f"[{h}]" if ":" in h else h for h in hosts]  # starlette keeps IPv6 brackets

    def with_trusted_hosts() -> list[Middleware]:
        trusted = Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)
        own = [trusted, Middleware(SameOriginWebSocket), Middleware(PageHead)]
        return [*own, *streamlit_middleware()]

    starlette_app.create_streamlit_middleware = with_trusted_hosts
    sys.argv = ["streamlit", *streamlit_args]
    cli.main()


if __name__ == "__main__":  # python -m dashboard.serve HOST,HOST,... run APP [options]
    die_with_parent(int(os.environ.get(PARENT_PID_ENV) or 0))
    launch([h for h in sys.argv[1].split(",") if h], sys.argv[2:])
