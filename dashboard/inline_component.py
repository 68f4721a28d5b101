"""Streamlit components v2 elements whose HTML, CSS and JavaScript live next to their Python
module: read once, registered inline, served with the app (no build step, nothing fetched)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st


def inline_component(name: str, folder: Path, stem: str, *, isolate_styles: bool = True) -> Any:
    """The mounting command of component ``name`` made of ``folder/stem.{html,css,js}``."""

    def source(kind: str) -> str:
        return (folder / f"{stem}.{kind}").read_text(encoding="utf-8")

    return st.components.v2.component(
        name, html=source("html"), css=source("css"), js=source("js"), isolate_styles=isolate_styles
    )
