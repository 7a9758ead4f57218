"""Pipe tables as the model should read them: one line per row, each cell named by its column.

A 1.5B model reads ``Developed By | Google Brain | Facebook AI Research (FAIR) |`` under the header
``Feature | TensorFlow | PyTorch |`` and answers "Google Brain developed PyTorch": it loses track of
which column a cell is in (seen on the eval set, test-a07). Written as

    Developed By: TensorFlow: Google Brain; PyTorch: Facebook AI Research (FAIR).

every fact names its row and its column. Only the prompt shows this form (``answering.passage_block``);
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


def _row(header: list[str], cells: list[str]) -> str:
    """One body row as a line: the first cell names the row, the others are named by their column."""
    label, rest = cells[0], cells[1:]
    pairs = zip(header[1:], rest, strict=True)
    named = [f"{column}: {cell}" if column else cell for column, cell in pairs if cell]
    line = "; ".join(named)
    if label:
        line = f"{label}: {line}" if line else label
    return line if line.endswith((".", "!", "?")) else line + "."


def linearize_tables(text: str) -> str:
    """``text`` with every pipe table (a header line, a ``---|---`` line, rows) written row by row.

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
            rows.append(_row(header, cells))
            j += 1
        if not rows:
            out.append(lines[i])
            i += 1
            continue
        out.extend(rows)
        i = j
    return "\n".join(out)
