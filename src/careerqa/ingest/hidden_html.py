"""Hidden HTML: the spans of a page that a browser does not show, cut before the page becomes text.

``hidden_html_spans`` walks the tags with a small tree builder (void elements, raw-text elements,
the implied end tags of ``<p>``, ``<li>``, ``<dt>``/``<dd>``, table rows and cells, end tags that close
their open descendants, unclosed elements running to their parent's end or the end of the page) and
marks every element, with everything inside it, that is:

- never rendered: ``<script>``, ``<style>``, ``<template>``, ``<noscript>``, ``<iframe>`` content,
  ``<noembed>``, ``<noframes>``, closed or not (a ``<script>`` never closed hides the rest of the page);
- ``hidden`` (unless its own style sets a ``display`` other than ``none``, which wins in a browser;
  ``hidden="until-found"`` stays: find-in-page opens it, like a ``<details>`` body), ``aria-hidden="true"``
  (the author says it is not content: an icon, a decoration), or a screen-reader-only class
  (``sr-only``, ``visually-hidden``, ``visuallyhidden``, ``screen-reader-text``);
- styled (its ``style`` attribute, or a class or id rule of a ``<style>`` element outside any at-rule,
  by specificity, then order) with ``display:none``; ``opacity`` at most 0.05; ``content-visibility:
  hidden``; a ``transform`` with ``scale(0)``; a width or height under 1 px together with ``overflow:
  hidden`` or ``clip`` (without it the text overflows the box and shows, so a zero size alone stays);
  a ``clip: rect()`` of no area or a ``clip-path: inset()`` of 50 % or more; or moved off the page (a
  ``left``/``top`` of -1000 px or less on a positioned element, or such a ``text-indent`` or margin);
- or, inherited and undone by a descendant that sets its own value, as a browser does:
  ``visibility:hidden``/``collapse``, a ``font-size`` under 1 px (a child set in ``px``, ``pt``, ``rem``
  or a keyword shows again: the inline-block spacing trick), and a transparent ``color``.

A closed ``<details>`` body, a ``<dialog>`` and text in a light colour stay: a reader can open or read
them. Not handled here: external style sheets, selectors with combinators, pseudo-classes or
attributes, at-rule blocks (``@media``: hidden on some screens only), colour against the background
(white on white), positioning by ``transform``, and script that hides or shows content.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace

# Attribute values in quotes may hold ">"; an unmatched quote falls back to the first ">". Possessive,
# so a tag that does not end never makes the search backtrack.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)((?:\"[^\"]*\"|'[^']*'|[^>\"'])*+(?=>)|[^>]*+)>")
_ATTR = re.compile(r"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_VOID = frozenset("area base br col embed hr img input keygen link meta param source track wbr".split())
# Content a browser never renders; the first ones are raw text up to their end tag.
_RAW_HIDDEN = frozenset("script style iframe noembed noframes xmp".split())
_RAW_SHOWN = frozenset("textarea title".split())
_NEVER_SHOWN = _RAW_HIDDEN | {"template", "noscript"}
_SR_ONLY = frozenset("sr-only visually-hidden visuallyhidden screen-reader-text".split())
_CLOSES_P = frozenset(
    "address article aside blockquote details dialog div dl fieldset figcaption figure footer form h1 h2 h3"
    " h4 h5 h6 header hgroup hr main menu nav ol p pre section table ul".split()
)
_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
_SCOPE = frozenset("html table td th caption button object marquee applet template".split())
# An opening tag -> (elements it closes when open, elements that stop the search).
_IMPLIED_END = {
    "li": ({"li"}, _SCOPE | {"ul", "ol"}),
    "dt": ({"dt", "dd"}, _SCOPE | {"dl"}),
    "dd": ({"dt", "dd"}, _SCOPE | {"dl"}),
    "tr": ({"tr", "td", "th"}, {"table", "html", "template"}),
    "td": ({"td", "th"}, {"tr", "table", "html", "template"}),
    "th": ({"td", "th"}, {"tr", "table", "html", "template"}),
    "option": ({"option"}, {"select", "datalist", "html"}),
}
_OFF_PAGE_PX = 1000.0
_MIN_OPACITY = 0.05
_UNIT_PX = {
    "px": 1.0,
    "pt": 4 / 3,
    "pc": 16.0,
    "in": 96.0,
    "cm": 96 / 2.54,
    "mm": 96 / 25.4,
    "em": 16.0,
    "rem": 16.0,
    "": 1.0,
}


@dataclass(frozen=True)
class _State:
    gone: bool = False  # the element and all inside it are not shown, whatever they say
    invisible: bool = False  # visibility:hidden (a descendant may say visible)
    tiny: bool = False  # font-size under 1px (a descendant may set a readable size)
    clear: bool = False  # a transparent colour (a descendant may set its own)

    @property
    def hidden(self) -> bool:
        return self.gone or self.invisible or self.tiny or self.clear


@dataclass(frozen=True)
class _Rule:
    specificity: tuple[int, int, int]
    tag: str | None
    classes: frozenset[str]
    ident: str | None
    declarations: str


def hidden_html_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every hidden part of ``text`` (sorted, disjoint), tags included."""
    rules = _stylesheet_rules(text)
    stack = _Stack()
    spans: list[tuple[int, int]] = []
    pos = 0
    last = text.rfind(">") + 1  # no tag ends after it: the search stops there
    while True:
        match = _TAG.search(text, pos, last)
        state = stack[-1][1] if stack else _State()
        if match is None:
            _mark(spans, pos, len(text), state.hidden)
            return spans
        _mark(spans, pos, match.start(), state.hidden)
        closing, name = match.group(1), match.group(2).lower()
        if closing:
            closed = stack.close(name)
            _mark(spans, match.start(), match.end(), closed is not None and closed.hidden)
            pos = match.end()
            continue
        stack.imply_ends(name)
        parent = stack[-1][1] if stack else _State()
        child = _child_state(parent, name, match.group(3), rules)
        end = match.end()
        if name in _RAW_HIDDEN or name in _RAW_SHOWN:
            close = re.compile(rf"</{name}\s*>", re.IGNORECASE).search(text, end)
            end = close.end() if close else len(text)
        elif name not in _VOID and not match.group(3).rstrip().endswith("/"):
            stack.push(name, child)
        _mark(spans, match.start(), end, child.hidden)
        pos = end


def _mark(spans: list[tuple[int, int]], start: int, end: int, hidden: bool) -> None:
    if not hidden or end <= start:
        return
    if spans and spans[-1][1] >= start:
        spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
    else:
        spans.append((start, end))


class _Stack(list[tuple[str, _State]]):
    """The open elements, innermost last, with a count of each name so a search for one that is not
    open costs nothing (a page of 20,000 nested ``<div>``s stays linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def push(self, name: str, state: _State) -> None:
        self.append((name, state))
        self.counts[name] = self.counts.get(name, 0) + 1

    def pop_to(self, i: int) -> None:
        for name, _ in self[i:]:
            self.counts[name] -= 1
        del self[i:]

    def close(self, name: str) -> _State | None:
        """Pop the nearest open ``name`` and all above it; its state, or None when none is open."""
        if not self.counts.get(name):
            return None
        for i in range(len(self) - 1, -1, -1):
            if self[i][0] == name:
                state = self[i][1]
                self.pop_to(i)
                return state
        return None

    def imply_ends(self, name: str) -> None:
        """Close what an opening ``name`` closes in a browser (``<p>`` before a block, ``<li>`` before
        ``<li>``, ...), searching the open elements down to the first that scopes the search."""
        targets, stops = _IMPLIED_END.get(name, (set(), set()))
        if name in _CLOSES_P:
            targets, stops = targets | {"p"}, stops | _SCOPE
        if name in _HEADINGS and self and self[-1][0] in _HEADINGS:
            self.pop_to(len(self) - 1)
        if not any(self.counts.get(t) for t in targets):
            return
        for i in range(len(self) - 1, -1, -1):
            if self[i][0] in targets:
                self.pop_to(i)
                return
            if self[i][0] in stops:
                return


def _attributes(source: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR.finditer(source):
        value = next((v for v in m.groups()[1:] if v is not None), "")
        out.setdefault(m.group(1).lower(), html.unescape(value))
    return out


def _child_state(parent: _State, name: str, source: str, rules: list[_Rule]) -> _State:
    if parent.gone:
        return parent
    if not source.strip() and not rules:  # a bare tag: the parent's state, unless never shown
        return replace(parent, gone=True) if name in _NEVER_SHOWN else parent
    attrs = _attributes(source)
    classes = frozenset(attrs.get("class", "").split())
    ident = attrs.get("id")
    declarations = [
        r.declarations
        for r in rules
        if (r.tag is None or r.tag == name) and r.classes <= classes and (r.ident is None or r.ident == ident)
    ]
    props = _properties(";".join([*declarations, attrs.get("style", "")]))
    display = props.get("display")
    hidden_attr = "hidden" in attrs and attrs["hidden"].strip().lower() != "until-found"
    gone = (
        parent.gone
        or name in _NEVER_SHOWN
        or (hidden_attr and (display is None or display == "none"))
        or attrs.get("aria-hidden", "").strip().lower() == "true"
        or bool(classes & _SR_ONLY)
        or _gone_by_style(props)
    )
    state = replace(parent, gone=gone)
    visibility = props.get("visibility")
    if visibility is not None:
        state = replace(state, invisible=visibility in ("hidden", "collapse"))
    tiny = _tiny_font(props.get("font-size"), parent.tiny)
    colour = props.get("color")
    clear = parent.clear if colour is None or colour in ("inherit", "currentcolor") else _transparent(colour)
    return replace(state, tiny=tiny, clear=clear)


def _properties(declarations: str) -> dict[str, str]:
    """CSS declarations -> {property: value}, lower case, ``!important`` and comments dropped."""
    declarations = re.sub(r"/\*.*?\*/", "", declarations, flags=re.DOTALL)
    props: dict[str, str] = {}
    for part in declarations.split(";"):
        prop, sep, value = part.partition(":")
        if sep:
            value = re.sub(r"!\s*important", "", value, flags=re.IGNORECASE)
            props[prop.strip().lower()] = " ".join(value.split()).lower()
    return props


def _length_px(value: str | None) -> float | None:
    """A CSS length in px (em and rem as 16 px); None for what is not a plain length."""
    if value is None:
        return None
    m = re.fullmatch(r"([+-]?(?:\d+\.?\d*|\.\d+))(px|pt|pc|in|cm|mm|em|rem|)", value.strip())
    return float(m.group(1)) * _UNIT_PX[m.group(2)] if m else None


def _gone_by_style(props: dict[str, str]) -> bool:
    if props.get("display") == "none" or props.get("content-visibility") == "hidden":
        return True
    opacity = re.fullmatch(r"(\d*\.?\d+)(%?)", props.get("opacity", ""))
    if opacity and float(opacity.group(1)) / (100 if opacity.group(2) else 1) <= _MIN_OPACITY:
        return True
    if re.search(r"\bscale[xy]?\(\s*0(?:\.0*)?\s*[,)]", props.get("transform", "")):
        return True
    overflow = {props.get(k, "") for k in ("overflow", "overflow-x", "overflow-y")}
    for size in ("width", "height", "max-width", "max-height"):
        px = _length_px(props.get(size))
        if px is not None and px < 1 and overflow & {"hidden", "clip"}:
            return True
    if _clipped(props):
        return True
    positioned = props.get("position") in ("absolute", "fixed", "relative")
    for offset in ("left", "top") if positioned else ():
        px = _length_px(props.get(offset))
        if px is not None and px <= -_OFF_PAGE_PX:
            return True
    for offset in ("text-indent", "margin-left", "margin-top"):
        px = _length_px(props.get(offset))
        if px is not None and px <= -_OFF_PAGE_PX:
            return True
    return False


def _clipped(props: dict[str, str]) -> bool:
    rect = re.fullmatch(r"rect\((.*)\)", props.get("clip", ""))
    if rect:
        sides = [_length_px(v) for v in re.split(r"[\s,]+", rect.group(1).strip())]
        if len(sides) == 4 and None not in sides:
            top, right, bottom, left = (float(s or 0) for s in sides)
            if bottom <= top or right <= left:
                return True
    inset = re.fullmatch(r"inset\(\s*(\d*\.?\d+)%.*\)", props.get("clip-path", ""))
    return bool(inset and float(inset.group(1)) >= 50)


def _tiny_font(value: str | None, inherited: bool) -> bool:
    """Whether text set in ``font-size: value`` is under 1 px (a parent's size taken as 16 px)."""
    if value is None or value in ("inherit", "unset"):
        return inherited
    m = re.fullmatch(r"(\d*\.?\d+)(px|pt|pc|in|cm|mm|rem|em|%|)", value)
    if m is None:
        return False  # a keyword (small, medium, larger, ...) or calc(): a readable size
    number, unit = float(m.group(1)), m.group(2)
    if unit in ("em", "%"):  # relative to the parent's size: a tiny parent stays tiny
        return inherited or number * (0.16 if unit == "%" else 16) < 1
    return number * _UNIT_PX[unit] < 1


def _transparent(colour: str) -> bool:
    if colour == "transparent":
        return True
    m = re.fullmatch(r"#(?:[0-9a-f]{3}|[0-9a-f]{6})([0-9a-f]{1,2})?", colour)
    if m and m.group(1) is not None:
        return len(m.group(0)) in (5, 9) and int(m.group(1), 16) == 0
    alpha = re.fullmatch(r"(?:rgba?|hsla?)\(.*[,/]\s*(\d*\.?\d+)(%?)\s*\)", colour)
    return bool(alpha and float(alpha.group(1)) == 0)


def _stylesheet_rules(text: str) -> list[_Rule]:
    """The class and id rules of the page's ``<style>`` elements (for every medium), by specificity
    and then order; rules inside at-rules (``@media`` ...) and other selectors are left out."""
    rules: list[_Rule] = []
    for sheet in re.finditer(r"<style\b([^>]*)>(.*?)</style\s*>", text, re.IGNORECASE | re.DOTALL):
        media = _attributes(sheet.group(1)).get("media", "all").strip().lower()
        if media not in ("", "all", "screen"):
            continue
        css = re.sub(r"/\*.*?\*/", "", sheet.group(2), flags=re.DOTALL)
        css = _without_at_rules(css)
        for block in re.finditer(r"([^{}]+)\{([^{}]*)\}", css):
            for selector in block.group(1).split(","):
                rule = _simple_rule(selector.strip(), block.group(2))
                if rule is not None:
                    rules.append(rule)
    return sorted(rules, key=lambda r: r.specificity)  # stable: the later of two equal rules wins


def _without_at_rules(css: str) -> str:
    out: list[str] = []
    depth = 0
    skipping = False
    i = 0
    while i < len(css):
        ch = css[i]
        if depth == 0 and ch == "@":
            end = re.compile(r"[;{]").search(css, i)
            if end is None:
                break
            if css[end.start()] == ";":  # @import ...;
                i = end.end()
                continue
            skipping, depth, i = True, 1, end.end()
            continue
        if skipping:
            depth += {"{": 1, "}": -1}.get(ch, 0)
            skipping = depth > 0
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _simple_rule(selector: str, declarations: str) -> _Rule | None:
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9-]*)?((?:[.#][A-Za-z_-][\w-]*)+)", selector)
    if m is None:
        return None
    parts = re.findall(r"([.#])([\w-]+)", m.group(2))
    classes = frozenset(v for k, v in parts if k == ".")
    ids = [v for k, v in parts if k == "#"]
    if len(ids) > 1:
        return None
    tag = m.group(1).lower() if m.group(1) else None
    specificity = (len(ids), len(classes), 1 if tag else 0)
    return _Rule(specificity, tag, classes, ids[0] if ids else None, declarations)
