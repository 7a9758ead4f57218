"""Pipe tables as the model should read them: one line per cell, named by its column and its row.

A 1.5B model reads ``Developed By | Google Brain | Facebook AI Research (FAIR) |`` under the header
``Feature | TensorFlow | PyTorch |`` and answers "Google Brain developed PyTorch": it loses track of
which column a cell is in (seen on the eval set, test-a07). Written one cell per line,

    TensorFlow — Developed By: Google Brain.
    PyTorch — Developed By: Facebook AI Research (FAIR).

the model answers the eval set's three table questions (who developed PyTorch, its production tools,
the two computational graphs) from the same passages; with one line per row ("Developed By:
TensorFlow: Google Brain; PyTorch: …") it refused two of them and garbled the third, and with the
table as written it named Google Brain. Only the prompt shows this form (``prompts.passage_block``);
the index keeps the table as written, so citations and the sources shown to the user are unchanged.
"""

from __future__ import annotations

import re

_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
MIN_COLUMNS = 2


def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    return [cell.strip() for cell in body.split("|")]


def _row(header: list[str], cells: list[str]) -> list[str]:
    """One body row as lines, one per cell: ``<column> — <row label>: <cell>.``"""
    label = cells[0]
    lines = []
    for column, cell in zip(header[1:], cells[1:], strict=True):
        if not cell:
            continue
        named = f"{column} — {label}" if column and label else column or label
        line = f"{named}: {cell}" if named else cell
        lines.append(line if line.endswith((".", "!", "?")) else line + ".")
    return lines


def linearize_tables(text: str) -> str:
    """``text`` with every pipe table (a header line, a ``---|---`` line, rows) written one cell per line.

    Anything that is not such a table, including a row whose cell count differs from the header's
    (a pipe inside a cell, say), is left exactly as it is."""
    if "|" not in text:
        return text
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        header = _cells(lines[i]) if "|" in lines[i] else []
        if len(header) < MIN_COLUMNS or i + 1 >= len(lines) or not _SEPARATOR.match(lines[i + 1]):
            out.append(lines[i])
            i += 1
            continue
        j = i + 2
        rows: list[str] = []
        while j < len(lines) and "|" in lines[j]:
            cells = _cells(lines[j])
            if len(cells) != len(header):
                break
            rows.extend(_row(header, cells))
            j += 1
        if not rows:
            out.append(lines[i])
            i += 1
            continue
        out.extend(rows)
        i = j
    return "\n".join(out)
