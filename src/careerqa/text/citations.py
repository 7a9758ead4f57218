"""Citation markers: parse ``[n]`` in model output, drop dangling ones, renumber in reading order.

The model numbers passages as they appear in the prompt; the reader sees citations numbered by first
mention, and only for passages that exist. ``CitationStream`` does this while text streams, holding
back only a possible marker, so what streams is what the final answer says.
Not handled here: whether a cited passage supports its sentence (``answer/grounding.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# "[1]", "[1, 2]", "[1][2]" and "[Passage 1]" are all markers; "df['x']" is not.
MARKER = re.compile(r"\[\s*(?:passages?\s*)?(\d+(?:\s*[,;]\s*(?:passages?\s*)?\d+)*)\s*\]", re.IGNORECASE)
_MARKER_PREFIX = re.compile(r"\[\s*(?:p(?:a(?:s(?:s(?:a(?:g(?:e(?:s)?)?)?)?)?)?)?\s*)?[\d\s,;]*$", re.I)


class CitationStream:
    """Rewrite markers in streamed text: valid ones renumbered by first mention, others removed."""

    def __init__(self, n_passages: int) -> None:
        self.n_passages = n_passages
        self.order: list[int] = []  # prompt passage numbers, in order of first citation
        self._pending = ""
        self.text = ""
        self.idle = 0  # consecutive feeds that added no words (a model looping on markers)

    def feed(self, piece: str) -> str:
        buf = self._pending + piece
        out: list[str] = []
        while buf:
            start = buf.find("[")
            if start < 0:
                out.append(buf)
                buf = ""
                break
            out.append(buf[:start])
            buf = buf[start:]
            match = MARKER.match(buf)
            if match:
                out.append(self._render(match.group(1)))
                buf = buf[match.end() :]
            elif _MARKER_PREFIX.match(buf) and len(buf) < 40:
                break  # may still become a marker: wait for more text
            else:
                out.append("[")
                buf = buf[1:]
        self._pending = buf
        emitted = "".join(out)
        if re.fullmatch(r"[\s\[\]\d.,;]*", emitted) and re.fullmatch(r"[\s\[\]\d.,;]*", piece):
            self.idle += 1
        else:
            self.idle = 0
        self.text += emitted
        return emitted

    def finish(self) -> str:
        rest, self._pending = self._pending, ""
        if _MARKER_PREFIX.match(rest):
            return ""  # an unfinished marker ("[1" at the end of the output) is never shown
        self.text += rest
        return rest

    def _render(self, numbers: str) -> str:
        shown: list[int] = []
        previous = re.search(r"((?:\[\d+\])+)[\s.,;]*$", self.text)
        for raw in re.findall(r"\d+", numbers):
            n = int(raw)
            if not 1 <= n <= self.n_passages:
                continue  # dangling: never shown
            if n not in self.order:
                self.order.append(n)
            display = self.order.index(n) + 1
            if display not in shown:
                shown.append(display)
        rendered = "".join(f"[{d}]" for d in shown)
        if (
            previous
            and rendered
            and set(re.findall(r"\d+", rendered)) <= set(re.findall(r"\d+", previous.group(1)))
        ):
            return ""  # the same marker again right after itself: a repetition, not a new citation
        return rendered


def cited_numbers(text: str) -> list[int]:
    """Marker numbers in order of first mention."""
    seen: list[int] = []
    for match in MARKER.finditer(text):
        for raw in re.findall(r"\d+", match.group(1)):
            if int(raw) not in seen:
                seen.append(int(raw))
    return seen


def renumber(text: str, keep: Iterable[int]) -> tuple[str, list[int]]:
    """Keep only markers whose number is in ``keep``; renumber them 1.. by first mention.

    Returns the new text and the old numbers in their new order (``order[i]`` is now ``[i+1]``).
    """
    allowed = set(keep)
    order: list[int] = []

    def sub(match: re.Match[str]) -> str:
        shown = []
        for raw in re.findall(r"\d+", match.group(1)):
            n = int(raw)
            if n not in allowed:
                continue
            if n not in order:
                order.append(n)
            d = order.index(n) + 1
            if d not in shown:
                shown.append(d)
        return "".join(f"[{d}]" for d in shown)

    return tidy(MARKER.sub(sub, text)), order


def tidy(text: str) -> str:
    """Collapse repeated markers and put a marker that follows a sentence's full stop before it."""
    text = re.sub(r"(\[\d+\])(?:\s*\1)+", r"\1", text)  # "[1] [1] [1]" -> "[1]"
    text = re.sub(
        r"([.!?])((?:\s*\[\d+\])+)(?=\s|$)", lambda m: " " + "".join(m.group(2).split()) + m.group(1), text
    )
    text = re.sub(r"(\[\d+\])\s+(?=\[\d+\])", r"\1", text)  # "[1] [2]" -> "[1][2]"
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)  # "fact [9]." with [9] dropped -> "fact."
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def cite(sentence: str, n: int = 1) -> str:
    """``sentence`` with the marker ``[n]`` before its closing punctuation ("It is [1].")."""
    match = re.search(r"[.!?:]+$", sentence)
    if match:
        return f"{sentence[: match.start()]} [{n}]{sentence[match.start() :]}"
    return f"{sentence} [{n}]."
