"""Tracked substitutions: edit cleaned text while keeping, for every character, where it came from.

Every cleaning step (``ingest/clean.py``, ``ingest/html_text.py``, ``ingest/repairs.py``) is a series of
``tsub`` calls (a regex substitution) or ``cut`` calls (spans removed) over ``(text, offsets)``:
``offsets[i]`` is the index in the raw file of ``text[i]``, with one extra entry for the end.
Not handled here: which substitutions cleaning makes (the modules above), and mapping spans back to the
raw file (``Document.raw_span``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from difflib import SequenceMatcher

Repl = str | Callable[[re.Match[str]], str]


def tsub(
    pattern: str | re.Pattern[str], repl: Repl, text: str, offsets: list[int], flags: int = 0
) -> tuple[str, list[int]]:
    """``re.sub`` that also rewrites ``offsets`` (one raw index per char, plus one for the end).

    Replacement characters are aligned with the matched text (case-insensitively), so kept
    characters keep their exact raw position and inserted ones take their neighbour's.
    """
    rx = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
    parts: list[str] = []
    new_offsets: list[int] = []
    pos = 0
    for m in rx.finditer(text):
        old = m.group(0)
        new = repl(m) if callable(repl) else m.expand(repl)
        if new == old:
            continue
        parts.append(text[pos : m.start()])
        new_offsets.extend(offsets[pos : m.start()])
        parts.append(new)
        new_offsets.extend(_align(old, new, offsets, m.start()))
        pos = m.end()
    if pos == 0 and not parts:
        return text, offsets
    parts.append(text[pos:])
    new_offsets.extend(offsets[pos:])
    return "".join(parts), new_offsets


def _align(old: str, new: str, offsets: list[int], base: int) -> list[int]:
    if not new:
        return []
    if len(old) == len(new):
        return offsets[base : base + len(new)]
    if not old:
        return [offsets[base]] * len(new)
    last = len(old) - 1
    result: list[int] = []
    done_new = 0
    done_old = 0
    matcher = SequenceMatcher(None, old.lower(), new.lower(), autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        result.extend([offsets[base + min(done_old, last)]] * (b - done_new))
        result.extend(offsets[base + a : base + a + size])
        done_new, done_old = b + size, a + size
    return result


def cut(text: str, offsets: list[int], spans: list[tuple[int, int]]) -> tuple[str, list[int]]:
    """``text`` without the ``[start, end)`` spans (sorted, disjoint), with its offsets."""
    if not spans:
        return text, offsets
    parts: list[str] = []
    kept: list[int] = []
    pos = 0
    for start, end in spans:
        parts.append(text[pos:start])
        kept.extend(offsets[pos:start])
        pos = end
    parts.append(text[pos:])
    kept.extend(offsets[pos:])
    return "".join(parts), kept
