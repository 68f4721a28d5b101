"""Page: counts, flag precision and the cleaned-CSV export."""

from dashboard.page_summary import render

render()
