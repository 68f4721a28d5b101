"""What a review card shows of its sample comes from the data kind's entry in the card registry
(``dashboard.cards.CARD_KINDS``), and nothing in ``pipeline/`` or ``dashboard/`` branches on a
data kind's or a data source's name (the issue's "grep for the kind names finds none")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dashboard.cards import CARD_KINDS, FeatureCard, ImageCard, TextCard, card_kind

ROOT = Path(__file__).resolve().parents[1]
#: the names a branch must not test for: data kinds and data sources
KIND_NAMES = {
    "image",
    "text",
    "tabular",
    "mnist5k",
    "digits",
    "moons",
    "rotten-tomatoes",
    "imagefolder",
    "csv",
}


def kind_comparisons(path: Path) -> list[str]:
    """``x == "image"``-style comparisons (==, !=, in, not in) with a kind name, as file:line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        names = [
            c.value
            for o in operands
            for c in ([o] if isinstance(o, ast.Constant) else getattr(o, "elts", []))
            if isinstance(c, ast.Constant) and isinstance(c.value, str)
        ]
        if any(n in KIND_NAMES or n.startswith(("imagefolder:", "csv:")) for n in names):
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            found.append(f"{where}:{node.lineno}")
    return found


#: the packages that must not name a kind (the registries live in data/sources/, engine/kinds/
#: and dashboard/cards.CARD_KINDS); run/ too, whose image roots the data source names
NO_KIND_NAMES = ("ogad_core/pipeline", "ogad_core/run", "dashboard")
#: (file, name): a kind name's string that is no kind dispatch
NOT_A_KIND = {
    ("dashboard/cards.py", "image"),  # CARD_KINDS, the card registry itself
    ("dashboard/cards.py", "text"),
    ("dashboard/cards.py", "tabular"),  # ... and its fallback entry
    ("dashboard/map_view.py", "image"),  # the map component's raster field
    ("ogad_core/run/manifest.py", "image"),  # FIRST_DATA_KIND, old manifests' kind
}


def kind_names(path: Path) -> list[tuple[str, str, int]]:
    """Every string constant naming a kind or a spec form (``"image"``, ``"csv"``,
    ``"imagefolder:"``...) outside docstrings: a dict key, a default, a ``startswith`` or
    ``partition`` branch, a comparison; as (file, name, line)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
    }
    where = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return [
        (where, node.value.rstrip(":"), node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and (
            node.value.rstrip(":") in KIND_NAMES or node.value.startswith(("imagefolder:", "csv:"))
        )
    ]


def _files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_no_branch_on_kind_names_in_pipeline_or_dashboard() -> None:
    files = _files(*NO_KIND_NAMES)
    assert [hit for f in files for hit in kind_comparisons(f)] == []


def test_no_kind_name_outside_the_registries() -> None:
    hits = [hit for f in _files(*NO_KIND_NAMES) for hit in kind_names(f)]
    assert [h for h in hits if h[:2] not in NOT_A_KIND] == []


def test_the_kind_name_check_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text(
        '"""A docstring may say image."""\n'
        'kind = data.get("kind", "image")\n'
        'if spec.startswith("imagefolder:"):\n    pass\n'
        'head, _, rest = spec.partition(":")\nif head == "csv":\n    pass\n'
        'x = {"text": 1}[kind]\n'
    )
    assert [(name, line) for _, name, line in kind_names(sample)] == [
        ("image", 2),
        ("imagefolder", 3),
        ("csv", 6),
        ("text", 8),
    ]


def test_the_comparison_check_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text('if kind == "image":\n    pass\nif kind in ("text", "x"):\n    pass\n')
    assert len(kind_comparisons(sample)) == 2


def test_every_builtin_data_kind_has_a_card() -> None:
    from ogad_core.engine.kinds import INPUT_KINDS

    assert set(INPUT_KINDS) <= set(CARD_KINDS)
    assert isinstance(card_kind("image"), ImageCard)
    assert type(card_kind("text")) is TextCard
    assert isinstance(card_kind("sequence"), FeatureCard)  # a kind without a card: its features
    assert (card_kind("image").columns, card_kind("text").columns) == (4, 3)  # grid columns


def test_text_and_feature_cards_escape_and_fold() -> None:
    long = "<b>x</b> " + "word " * 400
    text = card_kind("text").sample_html("/run", long, large=False)
    assert "&lt;b&gt;" in text and "<details>" in text
    assert "<details>" not in card_kind("text").sample_html("/run", long, large=True)
    features = card_kind("tabular").sample_html("/run", "x1=0.500, x2=-1.000", large=False)
    assert "x1 = 0.500" in features and "x2 = -1.000" in features


@pytest.mark.parametrize("kind", ["text", "tabular"])
def test_only_text_cards_show_the_truncated_badge(kind: str) -> None:
    class Row:
        truncated = True

    assert ("truncated" in card_kind(kind).badges(Row())) == (kind == "text")
