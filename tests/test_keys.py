"""The widget keys are spelled once (dashboard/keys.py): the Python pages, the shortcut script
(shortcuts.js) and the card deck (deck.js) take them from there."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dashboard import keys, shortcuts

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = [ROOT / "dashboard" / "shortcuts.js", ROOT / "dashboard" / "deck_component" / "deck.js"]
PREFIXES = [keys.CARD, keys.CONFIRM, keys.REJECT, keys.RELABEL, keys.UNREVIEW, keys.RELABEL_MENU]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_spell_no_widget_key(script: Path) -> None:
    code = "\n".join(
        line
        for line in script.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("//")
    )
    spelled = [p for p in PREFIXES if re.search(rf"st-key-{p}", code)]
    assert spelled == []


def test_the_shortcut_script_gets_every_table() -> None:
    text = shortcuts.script()
    assert not re.search(r"__[A-Z_]+__", text)
    # nothing that reads as a tag inside the script (a comment's "<sample id>" kept Streamlit's
    # page from running it)
    assert not re.search(
        r"<[a-zA-Z/]", text.strip().removeprefix("<script>").removesuffix("</script>")
    )
    assert json.dumps(keys.CARD_SHORTCUTS) in text and json.dumps(keys.CARD) in text


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_filled_shortcut_script_parses(tmp_path: Path) -> None:
    js = tmp_path / "shortcuts.js"
    js.write_text(shortcuts.script().strip().removeprefix("<script>").removesuffix("</script>"))
    subprocess.run(["node", "--check", str(js)], check=True, capture_output=True)


def test_card_keys_are_prefix_and_id() -> None:
    assert keys.of(keys.CONFIRM, 7) == "confirm_7"
    assert keys.css_class(keys.of(keys.CARD, 3)) == "st-key-card_3"
    assert set(keys.for_scripts()) >= {"card", "confirm", "reject", "relabel", "relabelMenu"}


#: the files that name widget keys: every dashboard module and the dashboard's tests
KEY_USERS = [
    *sorted((ROOT / "dashboard").glob("*.py")),
    ROOT / "tests" / "test_dashboard_apptest.py",
    ROOT / "tests" / "test_browser.py",
]


def _key_values() -> list[str]:
    names = [n for n in vars(keys) if n.isupper() and isinstance(getattr(keys, n), str)]
    return sorted({getattr(keys, n) for n in names})


def _spelling(value: str) -> str:
    """A key written as a literal: in quotes or after ``st-key-``, ending there (a prefix key
    followed by a digit or an f-string / template field)."""
    end = r"""["'{$\d]""" if value.endswith("_") else r"""["']"""
    return rf"""(["']|st-key-){re.escape(value)}(?={end})"""


@pytest.mark.parametrize("path", KEY_USERS, ids=lambda p: p.name)
def test_no_file_spells_a_widget_key_of_the_keys_module(path: Path) -> None:
    if path.name == "keys.py":  # the spelling itself
        return
    text = path.read_text(encoding="utf-8")
    spelled = [value for value in _key_values() if re.search(_spelling(value), text)]
    assert spelled == [], f"{path.name} spells {spelled}: use the names in dashboard/keys.py"
