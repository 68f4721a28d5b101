"""Page: counts, flag precision, detection quality (known noise) and the cleaned-CSV export."""

from dashboard.page_summary import render

render()
