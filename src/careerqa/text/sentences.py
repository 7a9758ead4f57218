"""Where sentences begin and end: the one sentence splitter of careerqa.

``sentence_spans`` gives ``(start, end)`` spans into the text; everything that needs sentences uses it:
chunking (where a long paragraph may be cut), the index (the units embedded one by one, whose spans
are stored with each chunk: ``passage_spans``), verification (an answer's sentences, ``lines=False``),
the claim check and FAQ answers.

A sentence ends after a run of ``.``, ``!`` or ``?``, the closing quotes or brackets after it and the
citation markers that follow it ("… Python. [2]" and "… Python [1, 3]." both end after the marker),
when what follows starts a sentence: a capital letter or a digit (after any opening quote or bracket),
or a list item's bullet. A ``.`` does not end one after an abbreviation ("e.g.", "i.e.", "Dr.", "vs."),
after "No." or "Fig." before a number, after an initial ("J. K. Rowling", "John F. Kennedy"), nor
inside an open parenthesis ("(statistics. Calculus)" is a scraper's full stop). With ``lines`` (the
default) a line break ends a sentence too, unless the next line starts in lower case after a line
that does not end in punctuation (a hard-wrapped paragraph); an answer is split with ``lines=False``,
since it is rebuilt by joining its kept sentences and a list inside a sentence must keep its lines.

Chosen by measurement: ``bench/compare_splitters.py`` runs the 42 hard cases of
``tests/test_sentences.py`` (abbreviations, decimals, list items, headings and line breaks, quotes and
brackets after the stop, "?" and "!", citation markers) through each splitter careerqa had before
and through pysbd 0.3.4. Cases split exactly as expected (white space aside):

| splitter | cases right of 42 |
|---|---|
| this module | 40 |
| pysbd 0.3.4 (``clean=False``) | 36 |
| grounding's answer splitter (before) | 24 |
| FAQ answers, ``shortcuts.faq_answer`` (before) | 23 |
| chunking's long-paragraph cuts (before) | 22 |
| ``chunking.passage_sentences``, the index's units (before; its 3-word filter aside) | 21 |

pysbd, the nearest, cuts a citation marker after the stop off its sentence ("… popular. | [1] SQL"),
which verification cannot have, joins "… Python or R. Then …", keeps hard-wrapped lines apart, has no
mode for answers (line breaks inside a sentence), is 45 times slower on the corpus (218 ms against
5 ms) and would be a new dependency; it gets right the two cases this module misses (below).
The cases were written for this comparison, with the rules in view: read the table as "each rule
does what it says", not as accuracy on text in the wild.

Not handled here: a sentence that starts in lower case after a full stop ("… is out. pandas users …"
stays one sentence), an abbreviation outside the short lists below before a capital ("The U.S. Army
hires" is cut after "U.S."), colons (a heading "Skills: The Basics" is one unit), languages other than
English.
"""

from __future__ import annotations

import re

from careerqa.text.citations import MARKER

Span = tuple[int, int]

# Sentences shorter than this are not embedded on their own (a heading, "Skills:"): see passage_spans.
MIN_SENTENCE_WORDS = 3

_CLOSERS = "\"'”’)\\]*_"  # after the stop: closing quotes, brackets, Markdown emphasis
_OPENERS = "\"'“‘([*_"  # before a sentence's first letter
_BULLETS = "-*+•"
# The one sentence-end pattern: terminal punctuation, closers and markers, then white space or the end;
# or (with ``lines``) a line break.
_BREAK = re.compile(
    rf"(?P<stop>[.!?]+(?P<closers>[{_CLOSERS}]*)(?:[ \t]*{MARKER.pattern})*)(?=\s|$)|(?P<line>\n)", re.I
)
_ABBREVIATIONS = {"e.g", "i.e", "cf", "vs", "dr", "mr", "mrs", "ms", "prof", "st"}
_BEFORE_NUMBER = {"no", "nos", "fig", "figs", "approx", "p", "pp", "vol", "ch", "sec", "eq"}


def sentence_spans(text: str, *, lines: bool = True) -> list[Span]:
    """The ``(start, end)`` spans of ``text``'s sentences, in order, without surrounding white space.

    Every non-blank character is in exactly one span. ``lines=False`` ends sentences at punctuation
    only (a line break inside a sentence stays in it)."""
    spans: list[Span] = []
    start = _skip_space(text, 0)
    for match in _BREAK.finditer(text):
        if match.start() < start:  # a line break already passed by the previous cut
            continue
        following = _skip_space(text, match.end())
        if match.group("line") is not None:
            end = _end_before_space(text, start, match.start())
            if not lines or end == start:
                continue
            if following < len(text) and text[following].islower() and text[end - 1] not in ":;":
                continue  # a hard-wrapped line goes on
        else:
            if following >= len(text):
                continue  # the last sentence: closed below
            end = match.end()
            broken = lines and "\n" in text[end:following]
            if not broken and not _ends_here(text, start, match, following):
                continue
        spans.append((start, end))
        start = following
    end = _end_before_space(text, start, len(text))
    if end > start:
        spans.append((start, end))
    return spans


def split_sentences(text: str, *, lines: bool = True) -> list[str]:
    """The sentences of ``text`` as strings, leaving out pieces with no word (markers aside)."""
    pieces = (text[a:b] for a, b in sentence_spans(text, lines=lines))
    return [p for p in pieces if re.search(r"\w", MARKER.sub("", p))]


def passage_spans(text: str) -> list[Span]:
    """The units of a passage that the index embeds one by one and verification compares answer sentences
    with: its sentences of ``MIN_SENTENCE_WORDS`` words or more (the whole text if there is none)."""
    spans = [(a, b) for a, b in sentence_spans(text) if len(text[a:b].split()) >= MIN_SENTENCE_WORDS]
    return spans or [(0, len(text))]


def passage_sentences(text: str) -> list[str]:
    """The texts of ``passage_spans``."""
    return [text[a:b] for a, b in passage_spans(text)]


def sentence_stop(text: str, pos: int) -> int:
    """Where the sentence (``lines=False``) holding ``pos`` ends: at its final punctuation, after any
    closing quote or bracket, before its markers; the end of its text when it has none."""
    for start, end in sentence_spans(text, lines=False):
        if end <= pos and end < len(text.rstrip()):
            continue
        begin = max(start, pos)
        last = None
        for match in _BREAK.finditer(text, begin, end):
            if match.group("stop") is not None and match.end() == end:
                last = match
        if last is None:
            return end
        return last.end("closers") if last.group("closers") else last.start()
    return len(text.rstrip())


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _end_before_space(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _ends_here(text: str, start: int, stop: re.Match[str], following: int) -> bool:
    """Does the sentence that began at ``start`` end with ``stop``, the next one starting at ``following``?"""
    if not _starts_sentence(text, following):
        return False
    if text.count("(", start, stop.end()) > text.count(")", start, stop.end()):
        return False  # inside a parenthesis: a scraper's full stop
    if text[stop.start()] == "." and not text.startswith("..", stop.start()):
        return not (_list_number(text, stop.start()) or _abbreviation(text, stop.start(), following))
    return True


def _list_number(text: str, dot: int) -> bool:
    """Is the ``.`` at ``dot`` that of a numbered list item ("1. Learn Python" at a line's start)?"""
    line_start = text.rfind("\n", 0, dot) + 1
    return re.fullmatch(r"\s*\d{1,3}", text[line_start:dot]) is not None


def _starts_sentence(text: str, i: int) -> bool:
    if text[i] in _BULLETS and text[i + 1 : i + 2] == " ":
        return True  # a list item run into the paragraph
    while i < len(text) and text[i] in _OPENERS:
        i += 1
    return i < len(text) and (text[i].isupper() or text[i].isdigit())


def _abbreviation(text: str, dot: int, following: int) -> bool:
    """Is the ``.`` at ``dot`` the end of an abbreviation rather than of a sentence?"""
    word = re.search(r"[A-Za-z.]*$", text[max(0, dot - 12) : dot])
    token = word.group(0).lower() if word else ""
    if token in _ABBREVIATIONS:
        return True
    if token in _BEFORE_NUMBER and text[following].isdigit():
        return True
    if re.fullmatch(r"[A-Z]", word.group(0) if word else ""):  # an initial?
        before = re.search(r"(\S+)\s+$", text[max(0, dot - 30) : dot - 1])
        after_initial = before is not None and re.fullmatch(r"[A-Z][a-z]+|[A-Z]\.", before.group(1))
        return bool(after_initial or re.match(r"[A-Z]\.\s", text[following : following + 3]))
    return False
