"""Form rules for answers, enforced on what the model wrote, not asked of it.

- No prompt markup reaches the reader: the prompt's tags (``<passage n="1">``, ``</passage>``,
  ``<|im_end|>``; other angle-bracket text is content, escaped by the web page) are
  cut while the answer streams (``MarkupFilter``), and labels the prompt uses ("Passage 2:",
  "Answer:", "Assistant:") at the start of a line or of the answer are cut with them.
- ``STOP`` ends generation where the model starts echoing the prompt (a closing passage tag, a new
  "Question:").
- ``select`` keeps at most ``max_sentences`` sentences and at most ``MAX_COPIED`` sentences copied
  verbatim from a passage (a copy-dump), choosing the ones most similar to the question, in the
  answer's order.
- ``place_markers`` moves a citation marker out of an open parenthesis or quotation
  ("(statistics [1])" → "(statistics) [1]").
Not handled here: whether a sentence is supported (``answer/grounding.py``) or on topic
(``answer/relevance.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from careerqa.text.citations import MARKER
from careerqa.text.sentences import sentence_stop

# Generation stops here: the model has finished its answer and is echoing the prompt's structure.
STOP = ["</passage", "\nQuestion:", "\nPassages:", "\nUser:", "\nAssistant:"]
MAX_COPIED = 2  # verbatim passage sentences one answer may keep
MIN_COPY_WORDS = 6  # shorter sentences are names and phrases, not copies

_ATTRIBUTE = r"""\s+[\w-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?"""
# The prompt's own tags and the chat template's tokens. Other angle-bracket text (a passage that
# quotes "<img src=x>") is content: the CLI prints it and the web page escapes it.
_NAMES = r"(?:passages?|question|answer|context|system|user|assistant|im_start|im_end|s)"
_TAG = re.compile(rf"<\|[^<>|]{{0,40}}\|>|</?\s*{_NAMES}\b(?:{_ATTRIBUTE})*\s*/?>", re.IGNORECASE)
_TAG_PREFIX = re.compile(r"<(?:\|[^<>|]{0,40}\|?|/?\s*[A-Za-z][\w-]{0,30}(?:\s[^<>]{0,200})?)?$")
_LABEL = re.compile(
    r"(?im)^[ \t]*(?:\*\*)?(?:passages?(?:\s*\[?\d+\]?)?|question|answer|system|user|assistant|context)"
    r"(?:\*\*)?[ \t]*:(?:\*\*)?[ \t]*"
)
# The model sometimes starts with the end of an opening passage tag ('What is X?">Answer …'): one
# line of attribute text up to the quote and ">" that close the tag, at the very start of the answer.
_TAG_TAIL = re.compile(r"\A[^<>\n]{0,200}?[\"'][ \t]*>")
_LABEL_PREFIX_LEN = 24  # a line's first characters are held back until they cannot be a label


def strip_markup(text: str) -> str:
    """``text`` without tags and prompt labels (complete ones; see ``MarkupFilter`` for streams)."""
    text = _TAG.sub("", text)
    text = _TAG_TAIL.sub("", text.lstrip(), count=1)
    return _LABEL.sub("", text)


def has_markup(text: str) -> bool:
    """Does ``text`` hold a prompt tag or a prompt label (what ``strip_markup`` cuts)?"""
    return bool(_TAG.search(text) or _LABEL.search(text) or _TAG_TAIL.match(text))


def marker_in_open_bracket(text: str) -> bool:
    """Does a citation marker of ``text`` sit inside an open bracket or quotation?"""
    return any(
        _open_closer(text[text.rfind("\n", 0, m.start()) + 1 : m.start()]) is not None
        for m in _MARKER_RUN.finditer(text)
    )


class MarkupFilter:
    """Cut tags and labels from streamed text, holding back only what may still become one."""

    def __init__(self, tags: Sequence[str] = ()) -> None:
        """``tags``: the prompt's opening passage tags, whose tails ('… section="X">') the model may
        start its answer with; only text that could still be such a tail is held back."""
        self._tags = [t for t in tags if t]
        self._pending = ""
        self._line_start = True  # the pending text starts a line (or the answer)
        self._answer_start = True  # nothing shown yet: a tag's tail ('… section="X">') may lead
        self._shown = False

    def feed(self, piece: str) -> str:
        buf = self._pending + piece
        out: list[str] = []
        while buf:
            if self._answer_start:
                cut = max((len(t) - i for t in self._tags for i in _tail_starts(t, buf)), default=0)
                if cut:
                    buf = buf[cut:]
                elif any(buf in t for t in self._tags):
                    break  # may still turn out to be the tail of an opening tag
                self._answer_start = False
                continue
            if self._line_start:
                stripped = buf.lstrip(" \t")
                label = _LABEL.match(stripped)
                if label:
                    buf = stripped[label.end() :]
                    continue
                if len(stripped) < _LABEL_PREFIX_LEN and "\n" not in stripped and _could_be_label(stripped):
                    break
                self._line_start = False
            start = buf.find("<")
            newline = buf.find("\n")
            if newline >= 0 and (start < 0 or newline < start):
                out.append(buf[: newline + 1])
                buf = buf[newline + 1 :]
                self._line_start = True
                continue
            if start < 0:
                out.append(buf)
                buf = ""
                break
            out.append(buf[:start])
            buf = buf[start:]
            tag = _TAG.match(buf)
            if tag:
                buf = buf[tag.end() :]
                shown = "".join(out)
                if not shown[shown.rfind("\n") + 1 :].strip():
                    self._line_start = True  # nothing shown on this line yet: a label may follow
                if not shown.strip() and not self._shown:
                    self._answer_start = True  # nor in the answer: a tag's tail may follow
            elif _TAG_PREFIX.match(buf) and len(buf) < 240 and _could_be_tag(buf):
                break  # may still become a tag: wait for more text
            else:
                out.append("<")
                buf = buf[1:]
        self._pending = buf
        shown = "".join(out)
        self._shown = self._shown or bool(shown.strip())
        return shown

    def finish(self) -> str:
        rest, self._pending = self._pending, ""
        if rest.startswith("<") and _TAG_PREFIX.match(rest) and _could_be_tag(rest):
            return ""  # an unfinished tag at the end ("<passage n=\"1") is never shown
        return strip_markup(rest)


_TAG_NAMES = ("passage", "passages", "question", "answer", "context", "system", "user", "assistant", "s")


def _tail_starts(tag: str, text: str) -> list[int]:
    """Where in ``tag`` a tail begins that ``text`` starts with (tails of at least 3 characters)."""
    return [i for i in range(1, len(tag) - 2) if text.startswith(tag[i:])]


def _could_be_tag(start: str) -> bool:
    """May ``start`` (from a "<" to the end of the text so far) still become one of the prompt's tags?"""
    if start.startswith("<|"):
        return True
    match = re.match(r"</?\s*([A-Za-z_]*)(.?)", start)
    if match is None:
        return False
    word = match.group(1).lower()
    if match.group(2):  # the name is complete
        return word in _TAG_NAMES
    return any(name.startswith(word) for name in _TAG_NAMES)


def _could_be_label(start: str) -> bool:
    low = start.lower().lstrip("*")
    words = ("passage", "passages", "question", "answer", "system", "user", "assistant", "context")
    return any(w.startswith(low[: len(w)]) for w in words) if low else True


def is_copy(sentence: str, passage: str) -> bool:
    """Is ``sentence`` (markers aside) a verbatim copy of a run of ``passage``?"""
    words = plain_words(MARKER.sub("", sentence))
    if len(words.split()) < MIN_COPY_WORDS:
        return False
    return words in plain_words(passage)


def plain_words(text: str) -> str:
    """``text`` lower-cased, punctuation dropped, one space between words (for verbatim comparisons)."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def select(
    sentences: Sequence[str],
    relevance: Sequence[float],
    copied: Sequence[bool],
    max_sentences: int,
) -> list[int]:
    """Indices of the sentences to keep, in order: the most relevant ones, at most ``max_sentences``
    in all and ``MAX_COPIED`` verbatim copies."""
    ranked = sorted(range(len(sentences)), key=lambda i: (-relevance[i], i))
    keep: list[int] = []
    copies = 0
    for i in ranked:
        if len(keep) >= max_sentences:
            break
        if copied[i]:
            if copies >= MAX_COPIED:
                continue
            copies += 1
        keep.append(i)
    return sorted(keep)


_OPENERS = {"(": ")", "[": "]", "“": "”", "‘": "’"}
_MARKER_RUN = re.compile(r"(?:\s*\[\d+\])+")


def place_markers(text: str) -> str:
    """Move each run of citation markers that sits inside an open bracket or quotation to just after
    it closes (or to the end of the sentence when it never does)."""
    out: list[str] = []
    pos = 0
    for match in _MARKER_RUN.finditer(text):
        before = text[pos : match.start()]
        # from the paragraph's start: a scraper's "." inside a parenthesis does not close it
        closer = _open_closer(text[text.rfind("\n", 0, match.start()) + 1 : match.start()])
        if closer is None:
            out.append(before + match.group(0))
            pos = match.end()
            continue
        close_at = text.find(closer, match.end())
        sentence_end = sentence_stop(text, match.end())
        if 0 <= close_at < sentence_end:
            insert_at = close_at + 1
        else:
            insert_at = sentence_end
        out.append(before + text[match.end() : insert_at] + " " + match.group(0).strip())
        pos = insert_at
    out.append(text[pos:])
    result = "".join(out)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", result))


def _open_closer(prefix: str) -> str | None:
    """The closing character of the innermost bracket or quotation open at the end of ``prefix``."""
    stack: list[str] = []
    straight = False
    for ch in MARKER.sub("", prefix):
        if ch in _OPENERS:
            stack.append(_OPENERS[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
        elif ch == '"':
            straight = not straight
    if stack:
        return stack[-1]
    return '"' if straight else None
