"""Replace one section of docs/benchmarks.md in place (a benchmark that measured something new
updates its own section; every other section stays byte for byte as it was)."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def _level(line: str) -> int:
    """The heading level of a markdown line (0: not a heading)."""
    hashes = len(line) - len(line.lstrip("#"))
    return hashes if hashes and line[hashes : hashes + 1] == " " else 0


def splice(text: str, heading: str, *, after: str | None = None, path: Path = DOCS) -> None:
    """Put ``text`` (starting with ``heading``) where the section ``heading`` is, up to the next
    heading of the same or a higher level; a new section goes at the end of section ``after``
    (or of the file)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    body = text if text.endswith("\n") else text + "\n"
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        anchor = after or heading
        at = next((i for i, line in enumerate(lines) if line.rstrip() == anchor), None)
        end = len(lines) if at is None else _section_end(lines, at)
        lines[end:end] = [body, "\n"]
    else:
        lines[start : _section_end(lines, start)] = [body, "\n"]
    path.write_text("".join(lines), encoding="utf-8")


def _section_end(lines: list[str], start: int) -> int:
    level = _level(lines[start])
    for i in range(start + 1, len(lines)):
        if 0 < _level(lines[i]) <= level:
            return i
    return len(lines)
