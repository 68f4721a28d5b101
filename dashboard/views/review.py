"""Page: the gradient map and the review queue."""

from dashboard.page_review import render

render()
