"""The README and docs/ stay true: every ``python`` block runs, and every ``ogad`` command line
names a real command and real flags.

Each file's ``python`` blocks run in order in one namespace (a later block may use an earlier
one's names), in a temporary folder holding a link to ``sample_data/``.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest

from ogad_core.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
#: an ``ogad`` command line in an indented or fenced block: ``ogad SUB ...``
COMMAND = re.compile(r"^(?: {4,}|\$ )ogad (\w+)(.*)$", re.M)
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def python_blocks(path: Path) -> list[str]:
    """The ``python`` fenced blocks of a markdown file, in order."""
    return FENCE.findall(path.read_text(encoding="utf-8"))


def command_lines(path: Path) -> list[tuple[str, list[str]]]:
    """(sub-command, the ``--flags`` it shows) of every ``ogad SUB ...`` line."""
    return [(m[1], FLAG.findall(m[2])) for m in COMMAND.finditer(path.read_text("utf-8"))]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def unknown_in(lines: list[tuple[str, list[str]]]) -> list[str]:
    """``ogad SUB --flag`` pairs the CLI does not have."""
    subs = _subparsers()
    bad = []
    for sub, flags in lines:
        if sub not in subs:
            bad.append(f"ogad {sub}")
            continue
        known = {s for a in subs[sub]._actions for s in a.option_strings}
        bad += [f"ogad {sub} {f}" for f in flags if f not in known]
    return bad


@pytest.mark.parametrize("doc", [d for d in DOCS if python_blocks(d)], ids=lambda d: d.name)
def test_python_blocks_run(doc: Path, tmp_path: Path) -> None:
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    namespace: dict[str, object] = {"__name__": "__docs__"}
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        for i, block in enumerate(python_blocks(doc)):
            exec(compile(block, f"{doc.name}[python block {i + 1}]", "exec"), namespace)
    finally:
        os.chdir(cwd)


def test_readme_has_python_blocks() -> None:
    assert len(python_blocks(ROOT / "README.md")) >= 3


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_command_lines_name_real_flags(doc: Path) -> None:
    assert unknown_in(command_lines(doc)) == []


def test_the_flag_check_can_fail() -> None:
    lines = command_lines(ROOT / "README.md")
    assert len(lines) >= 10
    assert unknown_in([("compute", ["--data", "--no-such-flag"]), ("frobnicate", [])]) == [
        "ogad compute --no-such-flag",
        "ogad frobnicate",
    ]


# ---- docs/architecture.md is the layer contract, and names every package -------------------

ROW = re.compile(r"^\| (\d+) \| `([^`]+)` \|", re.M)


def documented_layers(text: str) -> list[list[str]]:
    """The layer table of docs/architecture.md as module names, row by row."""
    rows: dict[int, list[str]] = {}
    for number, path in ROW.findall(text):
        module = path.removesuffix("/").removesuffix(".py").replace("/", ".")
        rows.setdefault(int(number), []).append(module)
    return [rows[k] for k in sorted(rows)]


def test_the_architecture_table_is_the_layer_contract() -> None:
    from tests.test_layers import LAYERS

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert [sorted(r) for r in documented_layers(text)] == [sorted(r) for r in LAYERS]


def test_the_architecture_tree_names_every_package() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    tree = text[text.index("## The tree") :]
    packages = [p.parent for p in (ROOT / "ogad_core").glob("*/__init__.py")]
    missing = [p.name for p in packages if f"ogad_core/{p.name}/" not in tree]
    assert missing == []


# ---- the README's command block shows every command's options -------------------------------

#: a short flag in the README's block (``-v``) or a long one
ANY_FLAG = re.compile(r"(?<![\w-])(--?[a-z][a-z0-9-]*)")


def command_block(text: str) -> dict[str, set[str]]:
    """The flags the README's ``## Command line`` block shows per command (a command's lines
    run from its ``ogad SUB`` line to the next)."""
    block = text[text.index("## Command line") :].split("\n\n", 2)[1]
    shown: dict[str, set[str]] = {}
    sub = ""
    for line in block.splitlines():
        match = re.match(r"\s+ogad (\w+)", line)
        sub = match[1] if match else sub
        shown.setdefault(sub, set()).update(ANY_FLAG.findall(line.split("#")[0]))
    return shown


def undocumented(shown: dict[str, set[str]]) -> list[str]:
    """``ogad SUB --flag`` options of the CLI that the block shows under none of its names
    (``--detector`` / ``-d``); ``--help``, ``--quiet`` and ``--verbose`` are every command's."""
    bad = []
    for sub, parser in _subparsers().items():
        for action in parser._actions:
            names = set(action.option_strings) - {
                "-h",
                "--help",
                "-q",
                "--quiet",
                "-v",
                "--verbose",
            }
            if names and not names & shown.get(sub, set()):
                bad.append(f"ogad {sub} {max(names, key=len)}")
    return bad


def test_the_readme_command_block_shows_every_option() -> None:
    """A user reading the README's command block sees every option `ogad SUB --help` lists."""
    shown = command_block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert sorted(shown) == sorted(_subparsers())
    assert undocumented(shown) == []
    assert "ogad demo --port" in undocumented({**shown, "demo": set()})  # the check can fail
