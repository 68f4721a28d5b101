"""What the dashboard's server adds to the head of the page it serves (Streamlit's
``index.html``), so that a fresh visit starts fetching what the page needs while the browser
is still parsing Streamlit's own code, instead of after the first script run.

Streamlit loads the code of each kind of element lazily: when the first element of that kind
arrives over the WebSocket, the browser asks for its chunk (and the chunk's imports) over six
connections. On a fresh visit to the Summary that starts about 0.9 s after the page opened and
is the page's critical path (docs/benchmarks.md, "Summary page, third pass"). The head added
here, by :class:`PageHead` (ASGI middleware, in :func:`dashboard.serve.launch`):

* ``window.__streamlit.BACKEND_BASE_URL`` = the app's root: the browser then asks the server
  at its root for its health, instead of first at the page's address (``/summary/_stcore/
  health``, a 404) and then again at the root after a 100 ms back-off;
* on a page with charts (:data:`PAGE_CHUNKS`), ``<link rel="modulepreload">`` for the chunks of
  the elements the page shows and the modules they import, read from Streamlit's own static
  folder (a Streamlit that names its chunks otherwise gets no preload, and nothing breaks);
* on the same pages, plotly.js (the chart component's bundle) is requested with the page and
  run at the first idle moment after Streamlit's code has run (``window.__ogadPlotlyLoading``,
  the promise ``chart_component/chart.js`` waits on), while the browser waits for the
  server's first script run.

Only HTML answers to page addresses (GET, ``text/html``) are changed; they and plotly.js are
served without gzip, as Streamlit serves its own index.html and static files; everything else
passes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dashboard.chart_component import BUNDLE_COMPONENT, bundle_path, serve_bundle
from ogad_core.reporting.report import PLOTLY_JS

#: the page's address path (its last segment) -> the Streamlit element chunks it shows
PAGE_CHUNKS: dict[str, tuple[str, ...]] = {
    "summary": (
        "Html",  # the page's style (app.py)
        "Metric",
        "BidiComponent",  # charts and tables (components v2)
        "Selectbox",
        "Checkbox",  # st.toggle
        "DownloadButton",
    ),
}
_IMPORT = re.compile(rb"""(?:from|import)\s*["']\./([\w.$-]+\.js)["']""")
_PRELOADED = re.compile(r"""href="\./static/js/([\w.$-]+\.js)\"""")
_HEAD_END = b"</head>"
PLAIN_SUFFIX = f"/{BUNDLE_COMPONENT}/{PLOTLY_JS.name}"  # served without gzip (_without_gzip)


def static_dir() -> Path:
    """Streamlit's folder of static files (its index.html and static/js/)."""
    from streamlit import file_util

    return Path(file_util.get_static_dir())


@functools.cache
def chunk_files(stems: tuple[str, ...], folder: Path) -> tuple[str, ...]:
    """File names (in ``folder``/static/js) of the chunks named ``stems`` (``Metric`` ->
    ``Metric.<hash>.js``) and of every module they import, in a stable order, leaving out
    those index.html loads already; () when a stem has no chunk (another Streamlit)."""
    js = folder / "static" / "js"
    entries = []
    for stem in stems:
        found = sorted(js.glob(f"{stem}.*.js"))
        if len(found) != 1:
            return ()
        entries.append(found[0].name)
    loaded = set(_PRELOADED.findall((folder / "index.html").read_text(encoding="utf-8")))
    loaded.update(p.name for p in js.glob("index.*.js"))
    return tuple(n for n in _closure(entries, js) if n not in loaded)


def _closure(names: Iterable[str], js: Path) -> list[str]:
    """``names`` and every module they import statically, each once, depth first."""
    seen: dict[str, None] = {}
    stack = list(reversed(list(names)))
    while stack:
        name = stack.pop()
        if name in seen or not (js / name).is_file():
            continue
        seen[name] = None
        stack.extend(reversed([m.decode() for m in _IMPORT.findall((js / name).read_bytes())]))
    return list(seen)


def head_html(page: str, base_url_path: str, plotly_src: str | None) -> str:
    """The tags added before ``</head>`` of the page at address path segment ``page``."""
    base = "/" + "/".join(p for p in base_url_path.split("/") if p)
    root = base.rstrip("/") + "/"
    tags = [
        "<script>window.__streamlit=Object.assign({},window.__streamlit,"
        f"{{BACKEND_BASE_URL:location.origin+{json.dumps(root)}}});</script>"
    ]
    stems = PAGE_CHUNKS.get(page)
    if stems is None:
        return "".join(tags)
    tags += [
        f'<link rel="modulepreload" crossorigin href="{root}static/js/{name}">'
        for name in chunk_files(stems, static_dir())
    ]
    if plotly_src is not None:
        tags.append(f'<link rel="preload" as="script" href="{plotly_src}">')
        tags.append(_plotly_loader(plotly_src))
    return "".join(tags)


def _plotly_loader(src: str) -> str:
    """A script that runs plotly.js (about 0.15 s of parsing) at the first idle moment after
    Streamlit's own code has run (the browser then waits for the server's first script run),
    as the promise chart.js's ``loadPlotly`` waits on."""
    return (
        "<script>window.__ogadPlotlyLoading=new Promise((ok,fail)=>{"
        "const run=()=>{const s=document.createElement('script');"
        f"s.src={json.dumps(src)};s.async=true;"
        "s.onload=()=>{performance.mark('ogad-chart:plotly');ok(window.Plotly);};"
        "s.onerror=()=>{window.__ogadPlotlyLoading=undefined;fail(new Error('plotly.js'));};"
        "document.head.appendChild(s);};"
        "const idle=()=>window.requestIdleCallback?requestIdleCallback(run,{timeout:300}):run();"
        "if(document.readyState==='loading')addEventListener('DOMContentLoaded',idle);else idle();"
        "});window.__ogadPlotlyLoading.catch(()=>undefined);</script>"
    )


def _page_of(path: str, base_url_path: str) -> str | None:
    """The page address segment of a request path ('' for the app's root), None when the path
    is not a page's (a file, an API route)."""
    base = "/".join(p for p in base_url_path.split("/") if p)
    parts = [p for p in path.split("/") if p]
    if base:
        if parts[: len(base.split("/"))] != base.split("/"):
            return None
        parts = parts[len(base.split("/")) :]
    if len(parts) > 1 or (parts and ("." in parts[0] or parts[0].startswith("_"))):
        return None
    return parts[0] if parts else ""


class PageHead:
    """ASGI middleware: adds :func:`head_html` to the HTML of a page address (GET)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        base = _base_url_path()
        path = str(scope.get("path", ""))
        page = _page_of(path, base)
        if page is not None:
            send = _Rewriter(send, lambda: _head(page, base))
        if page is not None or path.endswith(PLAIN_SUFFIX):
            scope = _without_gzip(scope)
        await self.app(scope, receive, send)


def _without_gzip(scope: Any) -> Any:
    """The request without its Accept-Encoding: Streamlit's gzip passes its answer unchanged (a
    page's HTML, read here; plotly.js, 1.2 MB, gzipped at level 9 on every visit otherwise:
    about 40 ms of the server's time, for a transfer on 127.0.0.1)."""
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"accept-encoding"]
    return {**scope, "headers": headers}


def _base_url_path() -> str:
    from streamlit import config

    return str(config.get_option("server.baseUrlPath") or "")


def _head(page: str, base: str) -> bytes:
    plotly_src = None
    if page in PAGE_CHUNKS:
        serve_bundle()  # the bundle's route exists before the page's script first runs
        plotly_src = bundle_path(base)
    return head_html(page, base, plotly_src).encode()


class _Rewriter:
    """Wraps ``send``: an HTML answer is held until its body is complete, then sent with the
    head added (and its length corrected); any other answer passes unchanged."""

    def __init__(self, send: Any, head: Any) -> None:
        self.send = send
        self.head = head
        self.start: dict | None = None
        self.body = b""

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            if _is_html(message):
                self.start = message
                return
        elif message["type"] == "http.response.body" and self.start is not None:
            self.body += message.get("body", b"")
            if message.get("more_body", False):
                return
            body = self.body.replace(_HEAD_END, self.head() + _HEAD_END, 1)
            headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await self.send({**self.start, "headers": headers})
            await self.send({"type": "http.response.body", "body": body})
            return
        await self.send(message)


def _is_html(start: dict) -> bool:
    if start.get("status") != 200:
        return False
    for key, value in start.get("headers", []):
        if key.lower() == b"content-type":
            return value.lower().startswith(b"text/html")
    return False
