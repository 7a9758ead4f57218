"""Invisible PDF text: a pdfminer.six layout device that leaves out the characters a reader cannot see.

``VisibleTextAggregator`` is pdfminer's ``PDFPageAggregator`` with the characters nobody sees taken out
before the layout analysis, so lines, boxes and reading order only ever hold visible text;
``visible_pages`` runs it as ``pdfminer.high_level.extract_pages`` does. Left out:

- a character drawn in text render mode 3 (neither filled nor stroked) or 7 (only added to the clipping
  path), unless it lies on an image: that is a scan's OCR text layer, whose words the image shows;
- a character painted in white or nearly (relative luminance 0.9 or more: a contrast under 1.1:1
  against a white page; a light grey such as #ccc, 1.6:1, stays), in the colours its render mode paints
  with (fill, stroke or both), read in DeviceGray, CalGray, DeviceRGB, CalRGB, DeviceCMYK or an ICCBased
  space of 1, 3 or 4 components, unless it lies on a filled shape that is not white (a dark table
  cell, a coloured banner) or on an image (whose colours are not read: a white word on a photo may be
  seen). Whether a character lies on one is decided at the end of its page (its centre in the shape's
  bounding box), so the order they were drawn in does not matter;
- a character set under 1 pt, or drawn wholly outside the page.

A left-out character still advances the text position, so the visible text keeps its place. Text is
Tr 3 from the ``Tr`` operator until a ``Q`` restores the state: text state outlives ``BT``/``ET``, as
the PDF specification says. Not handled here: colours in Separation, DeviceN, Indexed, Lab and pattern
spaces (kept: their colour is not known here), text covered by a shape drawn over it, clipping paths,
soft masks and transparency, and the colour of the page itself (taken as white).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import LAParams, LTChar, LTContainer, LTPage
from pdfminer.pdffont import PDFFont, PDFUnicodeNotDefined
from pdfminer.pdfinterp import PDFGraphicState, PDFPageInterpreter, PDFResourceManager, PDFTextState
from pdfminer.pdfpage import PDFPage
from pdfminer.utils import apply_matrix_pt

INVISIBLE_MODES = frozenset({3, 7})
_FILLS = frozenset({0, 2, 4, 6})  # render modes that fill the glyphs
_STROKES = frozenset({1, 2, 5, 6})  # render modes that stroke them
WHITE_LUMINANCE = 0.9
MIN_CHAR_SIZE = 1.0  # points
_Rect = tuple[float, float, float, float]


def luminance(colour: Any, components: int) -> float | None:
    """Relative luminance (0 black .. 1 white) of a gray, RGB or CMYK colour; None when unknown."""
    values = colour if isinstance(colour, tuple) else (colour,)
    if len(values) != components or not all(isinstance(v, int | float) for v in values):
        return None
    v = [min(1.0, max(0.0, float(x))) for x in values]
    if components == 1:
        rgb = (v[0], v[0], v[0])
    elif components == 3:
        rgb = (v[0], v[1], v[2])
    elif components == 4:
        rgb = ((1 - v[0]) * (1 - v[3]), (1 - v[1]) * (1 - v[3]), (1 - v[2]) * (1 - v[3]))
    else:
        return None

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


_KNOWN_SPACES = {"DeviceGray": 1, "CalGray": 1, "DeviceRGB": 3, "CalRGB": 3, "DeviceCMYK": 4}


def colour_luminance(colour: Any, space: Any) -> float | None:
    """``luminance`` of a colour in a pdfminer colour space (``PDFColorSpace``); None when unknown."""
    name = getattr(space, "name", None)
    components = _KNOWN_SPACES.get(str(name))
    if components is None and name == "ICCBased":
        components = getattr(space, "ncomponents", None)
    return None if components is None else luminance(colour, components)


def _is_white(colour: Any, space: Any) -> bool:
    value = colour_luminance(colour, space)
    return value is not None and value >= WHITE_LUMINANCE


class VisibleTextAggregator(PDFPageAggregator):
    """``PDFPageAggregator`` that drops invisible characters (see the module docstring);
    ``hidden_chars`` counts, per page number, the characters dropped."""

    def __init__(
        self,
        rsrcmgr: PDFResourceManager,
        laparams: LAParams | None = None,
        hidden_chars: dict[int, int] | None = None,
    ) -> None:
        super().__init__(rsrcmgr, laparams=laparams)
        self.hidden_chars = {} if hidden_chars is None else hidden_chars
        self._mode = 0
        self._fills: list[_Rect] = []  # filled paths that are not white, in device space
        self._images: list[_Rect] = []
        # Characters drawn invisible (True) or in white (False), with the container they were added to:
        # whether they sit on an image or a fill is known at the end of the page.
        self._suspects: list[tuple[LTContainer[Any], LTChar, bool]] = []
        self._page_box: _Rect = (0.0, 0.0, 0.0, 0.0)

    def begin_page(self, page: PDFPage, ctm: Any) -> None:
        super().begin_page(page, ctm)
        self._fills, self._images, self._suspects = [], [], []
        self._page_box = self.cur_item.bbox

    def end_page(self, page: PDFPage) -> None:
        drop: dict[int, tuple[LTContainer[Any], set[int]]] = {}
        for container, item, invisible in self._suspects:
            backdrops = self._images if invisible else self._images + self._fills
            cx, cy = (item.x0 + item.x1) / 2, (item.y0 + item.y1) / 2
            if not any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in backdrops):
                drop.setdefault(id(container), (container, set()))[1].add(id(item))
                self._count()
        for container, items in drop.values():  # pdfminer has no public way to take an item back
            container._objs = [obj for obj in container._objs if id(obj) not in items]
        self._suspects = []
        super().end_page(page)

    def render_string(
        self, textstate: PDFTextState, seq: Any, ncs: Any, graphicstate: PDFGraphicState
    ) -> None:
        self._mode = textstate.render
        super().render_string(textstate, seq, ncs, graphicstate)

    def paint_path(
        self, gstate: PDFGraphicState, stroke: bool, fill: bool, evenodd: bool, path: Sequence[Any]
    ) -> None:
        super().paint_path(gstate, stroke, fill, evenodd, path)
        if fill and not _is_white(gstate.ncolor, gstate.ncs):
            points = [
                apply_matrix_pt(self.ctm, (float(seg[i]), float(seg[i + 1])))
                for seg in path
                for i in range(1, len(seg) - 1, 2)
            ]
            if points:
                xs, ys = [p[0] for p in points], [p[1] for p in points]
                self._fills.append((min(xs), min(ys), max(xs), max(ys)))

    def render_image(self, name: str, stream: Any) -> None:
        super().render_image(name, stream)
        self._images.append(self.cur_item.bbox)

    def render_char(
        self,
        matrix: Any,
        font: PDFFont,
        fontsize: float,
        scaling: float,
        rise: float,
        cid: int,
        ncs: Any,
        graphicstate: PDFGraphicState,
    ) -> float:
        try:
            text = font.to_unichr(cid)
        except PDFUnicodeNotDefined:
            text = self.handle_undefined_char(font, cid)
        item = LTChar(
            matrix, font, fontsize, scaling, rise, text, font.char_width(cid), font.char_disp(cid), ncs,
            graphicstate,
        )  # fmt: skip
        x0, y0, x1, y1 = self._page_box
        if item.x1 < x0 or item.x0 > x1 or item.y1 < y0 or item.y0 > y1 or item.size < MIN_CHAR_SIZE:
            self._count()
            return float(item.adv)
        self.cur_item.add(item)
        if self._mode in INVISIBLE_MODES:
            self._suspects.append((self.cur_item, item, True))
        elif self._white(graphicstate):
            self._suspects.append((self.cur_item, item, False))
        return float(item.adv)

    def _count(self) -> None:
        self.hidden_chars[self.pageno] = self.hidden_chars.get(self.pageno, 0) + 1

    def _white(self, gstate: PDFGraphicState) -> bool:
        """Whether every colour the render mode paints the glyph with is white."""
        painted = []
        if self._mode in _FILLS:
            painted.append(_is_white(gstate.ncolor, gstate.ncs))
        if self._mode in _STROKES:
            painted.append(_is_white(gstate.scolor, gstate.scs))
        return bool(painted) and all(painted)


def visible_pages(
    raw: bytes, laparams: LAParams, hidden_chars: dict[int, int] | None = None
) -> Iterator[LTPage]:
    """The laid-out pages of a PDF's bytes, as ``extract_pages`` yields them, invisible text left out;
    ``hidden_chars`` (when given) receives the count of characters left out, by page number."""
    manager = PDFResourceManager(caching=True)
    device = VisibleTextAggregator(manager, laparams=laparams, hidden_chars=hidden_chars)
    interpreter = PDFPageInterpreter(manager, device)
    for page in PDFPage.get_pages(io.BytesIO(raw), caching=True):
        interpreter.process_page(page)
        yield device.get_result()
