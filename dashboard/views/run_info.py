"""Page: what the run is (manifest, steps, files)."""

from dashboard.page_run import render

render()
