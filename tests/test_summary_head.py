"""The head the dashboard's server adds to Streamlit's index.html (dashboard.page_head): the
Summary's element code and plotly.js asked for with the page, the server's root named at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dashboard.page_head import PAGE_CHUNKS, PageHead, chunk_files, head_html, static_dir

SRC = "/_stcore/bidi-components/ogad.plotly/plotly-basic.min.js"
HTML = b"<html><head><title>x</title></head><body></body></html>"


def test_the_summary_head_names_its_element_chunks_their_imports_and_plotly() -> None:
    js = static_dir() / "static" / "js"
    head = head_html("summary", "", SRC)
    assert 'BACKEND_BASE_URL:location.origin+"/"' in head
    for stem in PAGE_CHUNKS["summary"]:  # each chunk the page shows, found in this Streamlit
        (chunk,) = js.glob(f"{stem}.*.js")
        assert f'rel="modulepreload" crossorigin href="/static/js/{chunk.name}"' in head
    assert "/static/js/serialization." in head  # imported by the components' chunk
    index = (static_dir() / "index.html").read_text(encoding="utf-8")
    files = chunk_files(PAGE_CHUNKS["summary"], static_dir())
    assert files and not [f for f in files if f in index or f.startswith("index.")]
    assert f'rel="preload" as="script" href="{SRC}"' in head and "__ogadPlotlyLoading" in head


def test_other_pages_get_only_the_root_and_a_base_path_is_kept() -> None:
    review = head_html("", "", None)
    assert "BACKEND_BASE_URL" in review and "modulepreload" not in review
    assert "plotly" not in head_html("run_info", "", None)
    based = head_html("summary", "/review/app/", "/review/app" + SRC)
    assert 'location.origin+"/review/app/"' in based
    assert 'href="/review/app/static/js/Metric.' in based


def test_a_streamlit_without_the_chunk_gets_no_preload(tmp_path: Path) -> None:
    (tmp_path / "static" / "js").mkdir(parents=True)
    (tmp_path / "index.html").write_text("<html></html>", encoding="utf-8")
    assert chunk_files(("Metric",), tmp_path) == ()


def _served(path: str, body: bytes, content_type: bytes, method: str = "GET") -> tuple:
    """What PageHead sends for a request to ``path`` answered by an app that sends ``body`` in
    two parts, and the request headers the app saw."""
    seen: dict = {}
    sent: list[dict] = []

    async def app(scope, receive, send) -> None:
        seen["headers"] = dict(scope["headers"])
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body[:10], "more_body": True})
        await send({"type": "http.response.body", "body": body[10:]})

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"accept-encoding", b"gzip")],
    }
    asyncio.run(PageHead(app)(scope, None, send))
    out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return dict(sent[0]["headers"]), out, seen["headers"]


def test_the_middleware_adds_the_head_to_a_page_and_leaves_files_alone() -> None:
    headers, body, asked = _served("/summary", HTML, b"text/html; charset=utf-8")
    assert body.startswith(b"<html><head><title>x</title><script>window.__streamlit")
    assert b"modulepreload" in body and body.endswith(b"</head><body></body></html>")
    assert headers[b"content-length"] == str(len(body)).encode()
    assert b"accept-encoding" not in asked  # read here, so not gzipped below
    script = b"console.log('</head>')" * 10
    headers, body, asked = _served("/static/js/Metric.x.js", script, b"text/javascript")
    assert body == script and asked[b"accept-encoding"] == b"gzip"
    assert _served("/summary", HTML, b"text/html", method="POST")[1] == HTML
    assert _served("/_stcore/health", b"ok", b"text/plain")[1] == b"ok"
    assert _served(SRC, b"x" * 20, b"text/javascript")[2].get(b"accept-encoding") is None
