"""Hidden markup is not content (issue 27, item 4): HTML a browser does not show, PDF text drawn invisible
or white on white, and Word runs with the hidden-text property are left out of the indexed text, while
look-alikes a reader does see stay and offsets still point at the source."""

from __future__ import annotations

import io
import json
import re
import sys
import zlib
from pathlib import Path

import pytest

from careerqa.config import Settings
from careerqa.index.sync import chunking_params
from careerqa.ingest.clean import clean_text
from careerqa.ingest.corpus import load_document
from careerqa.ingest.hidden_html import hidden_html_spans
from careerqa.ingest.pdf_hidden import colour_luminance, luminance
from careerqa.ingest.readers import HIDDEN_TEXT_VERSION, read_docx, read_pdf

REPO = Path(__file__).resolve().parents[1]
ATTACKS = REPO / "eval" / "attacks"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import docfixtures  # noqa: E402


def html_text(body: str) -> str:
    return clean_text(f"<html><body>{body}</body></html>", "html")[0]


# --------------------------------------------------------------------------- HTML: each technique

HIDING = [
    '<div style="display:none">SECRET</div>',
    '<div style="DISPLAY: None !important">SECRET</div>',
    '<span style="visibility:hidden">SECRET</span>',
    '<span style="visibility: collapse">SECRET</span>',
    "<div hidden>SECRET</div>",
    '<div hidden="hidden">SECRET</div>',
    '<p aria-hidden="true">SECRET</p>',
    '<p aria-hidden="TRUE" style="position:absolute;left:-9999px">SECRET</p>',
    '<p style="font-size:0">SECRET</p>',
    '<p style="font-size: 0px">SECRET</p>',
    '<p style="font-size:0.01em">SECRET</p>',
    '<div style="opacity:0">SECRET</div>',
    '<div style="opacity:.0">SECRET</div>',
    '<div style="opacity:0;width:0;height:0;overflow:hidden">SECRET</div>',
    '<div style="width:0;height:0;overflow:hidden">SECRET</div>',
    '<div style="height:0px; overflow: clip">SECRET</div>',
    '<span style="position:absolute;clip:rect(0 0 0 0)">SECRET</span>',
    '<span style="clip-path: inset(50%)">SECRET</span>',
    '<span style="position:absolute; left:-10000px">SECRET</span>',
    '<span style="position:fixed; top:-200em">SECRET</span>',
    '<h3 style="text-indent:-9999px">SECRET</h3>',
    '<span style="transform: scale(0)">SECRET</span>',
    '<span style="content-visibility:hidden">SECRET</span>',
    '<span style="color:transparent">SECRET</span>',
    '<span style="color: rgba(0, 0, 0, 0)">SECRET</span>',
    '<span class="sr-only">SECRET</span>',
    '<span class="label visually-hidden">SECRET</span>',
    "<template><p>SECRET</p></template>",
    "<noscript><p>SECRET</p></noscript>",
    "<script>document.write('SECRET')</script>",
    '<style>.x::after { content: "SECRET" }</style>',
    '<iframe src="a.html">SECRET</iframe>',
    '<div style="display&#58;none">SECRET</div>',  # an entity in the attribute, as a browser reads it
]


@pytest.mark.parametrize("hiding", HIDING)
def test_each_hiding_technique_is_dropped(hiding):
    text = html_text(f"<p>Visible before.</p>{hiding}<p>Visible after.</p>")
    assert "SECRET" not in text
    assert "Visible before." in text and "Visible after." in text


def test_class_and_id_rules_of_a_style_element_hide():
    page = (
        "<html><head><style>/* c */ .promo-x, #note { display: none } p.ghost{font-size:0}</style></head>"
        '<body><p>Kept.</p><div class="promo-x">SECRET one</div><p id="note">SECRET two</p>'
        '<p class="ghost">SECRET three</p><span class="ghost">Kept span.</span></body></html>'
    )
    text = clean_text(page, "html")[0]
    assert "SECRET" not in text and "Kept." in text and "Kept span." in text


def test_everything_inside_a_hidden_element_goes():
    body = (
        "<p>Intro.</p>"
        '<div style="display:none"><h2>SECRET heading</h2><p>SECRET <b>bold</b><br>line</p>'
        '<img src="x.png" alt="SECRET"><ul><li>SECRET item</li><li>SECRET item 2</ul>'
        "<div><div>SECRET deep</div></div><script>var s = '</div>SECRET';</script>SECRET tail</div>"
        "<p>Outro.</p>"
    )
    text = html_text(body)
    assert "SECRET" not in text and "bold" not in text and "line" not in text
    assert text.split("\n\n") == ["Intro.", "Outro."]


def test_broken_markup_is_handled_like_a_browser():
    # an unclosed hidden <p> ends at the next block; an unclosed <div hidden> ends with its parent
    assert html_text("<p hidden>SECRET<p>Shown one.") == "Shown one."
    text = html_text("<article><div hidden>SECRET</article><p>Shown two.</p>")
    assert text == "Shown two."
    assert html_text("<ul><li hidden>SECRET<li>Shown three</ul>") == "- Shown three"
    assert html_text("<table><tr><td hidden>SECRET<td>Cell</table>").strip(" |") == "Cell"
    # a stray end tag, a ">" inside a quoted attribute, a tag that never ends
    assert html_text('</div><p title="a > b" hidden>SECRET</p><p>Shown four.</p>') == "Shown four."
    assert "SECRET" not in html_text("<p>Shown five.</p><script>SECRET never closed <p>x</p>")
    assert "SECRET" not in html_text("<p>Shown six.</p><div style='display:none'>SECRET")
    assert html_text("<p>Shown seven.</p><div hidden/><p>Shown eight.</p>").split("\n\n") == [
        "Shown seven.",
        "Shown eight.",
    ]


def test_nested_templates_are_dropped_whole():
    text = html_text(
        "<template><p>A</p><template>B</template><p>SECRET after inner</p></template><p>Kept</p>"
    )
    assert text == "Kept"


def test_mixed_visible_and_hidden_inline_text():
    text = html_text('<p>Salary bands <span style="display:none">SECRET</span>are public.</p>')
    assert text == "Salary bands are public."


# --------------------------------------------------------------------------- HTML: look-alikes that stay

KEPT = [
    "<details><summary>Read more</summary><p>KEPT details body</p></details>",
    '<p><span aria-hidden="true">★</span> KEPT next to an icon</p>',
    '<p aria-hidden="false">KEPT</p>',
    '<p style="color:#cccccc">KEPT light grey</p>',
    '<p style="color: rgba(0,0,0,0.4)">KEPT faint</p>',
    '<p style="opacity:0.5">KEPT half</p>',
    '<div style="width:0;height:0">KEPT overflows its empty box</div>',
    '<p style="font-size:12px">KEPT small</p>',
    '<p style="margin-left:-20px; text-indent:-1em">KEPT hanging indent</p>',
    '<p style="position:static; left:-9999px">KEPT not positioned</p>',
    '<div hidden="until-found">KEPT until found</div>',
    '<div hidden style="display:block">KEPT shown by its style</div>',
    '<p data-hidden="true" class="hidden-gems">KEPT look-alike attributes</p>',
    "<p>KEPT text about display:none and aria-hidden</p>",
    "<dialog><p>KEPT dialog</p></dialog>",
    '<div style="visibility:hidden"><p style="visibility:visible">KEPT visible child</p></div>',
    '<div style="font-size:0"><span style="font-size:16px">KEPT inline-block trick</span></div>',
    '<div style="color:transparent"><span style="color:#333">KEPT coloured child</span></div>',
    "<textarea>KEPT textarea</textarea>",
]


@pytest.mark.parametrize("kept", KEPT)
def test_visible_look_alikes_stay(kept):
    assert "KEPT" in html_text(kept)


def test_icon_is_dropped_but_its_label_stays():
    text = html_text('<p><i aria-hidden="true" class="icon">ICON</i>Download the guide</p>')
    assert text == "Download the guide"


def test_rules_for_other_media_and_complex_selectors_do_not_hide():
    page = (
        '<html><head><style media="print">.a { display:none }</style>'
        "<style>@media (max-width: 600px) { .b { display: none } } div .c { display:none }"
        " .d:hover { display:none } .e { display:none } .e.shown { display:block }</style></head><body>"
        '<p class="a">KEPT a</p><p class="b">KEPT b</p><p class="c">KEPT c</p><p class="d">KEPT d</p>'
        '<p class="e shown">KEPT e</p><p class="e">SECRET e</p></body></html>'
    )
    text = clean_text(page, "html")[0]
    assert all(f"KEPT {x}" in text for x in "abcde") and "SECRET" not in text


def test_offsets_still_point_at_the_source():
    page = (
        "<html><body><h1>Offer &amp; pay</h1><div hidden><p>SECRET</p></div>"
        '<p>Compare <span style="display:none">SECRET</span>total compensation.</p></body></html>'
    )
    text, offsets = clean_text(page, "html")
    assert len(offsets) == len(text) + 1
    for word in ("Offer", "pay", "Compare", "total", "compensation"):
        i = text.index(word)
        assert page[offsets[i] : offsets[i] + len(word)] == word


def test_spans_are_sorted_and_disjoint():
    page = "<p>a</p><b hidden>x</b><b hidden>y</b><p>b</p><i hidden>z</i>"
    spans = hidden_html_spans(page)
    assert spans == sorted(spans)
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert [page[s:e] for s, e in spans] == ["<b hidden>x</b><b hidden>y</b>", "<i hidden>z</i>"]


def test_pages_without_hidden_markup_are_unchanged():
    from tests.test_corpus import PAGE  # the corpus tests' page: a script, a style, a head

    assert hidden_html_spans(re.sub(r"<script>.*?</script>|<style>.*?</style>", "", PAGE)) == []


# --------------------------------------------------------------------------- PDF

VISIBLE = ["Window functions are asked in most SQL rounds.", "Bring two stories about failed pipelines."]


def _pdf(draw) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, VISIBLE[0], new_x="LMARGIN", new_y="NEXT")
    draw(pdf)
    pdf.set_text_color(0, 0, 0)
    pdf.multi_cell(0, 6, VISIBLE[1], new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _line(pdf, text: str, **kw) -> None:
    pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT", **kw)


def _invisible(pdf) -> None:
    with pdf.local_context(text_mode="INVISIBLE"):
        _line(pdf, "SECRET invisible text")


def _white_rgb(pdf) -> None:
    with pdf.local_context(text_color=(255, 255, 255)):
        _line(pdf, "SECRET white text")


def _white_gray(pdf) -> None:
    pdf.set_text_color(255)  # DeviceGray 1
    _line(pdf, "SECRET gray one")
    pdf.set_text_color(0)


def _near_white(pdf) -> None:
    pdf.set_text_color(250, 250, 250)
    _line(pdf, "SECRET almost white")
    pdf.set_text_color(0)


def _tiny(pdf) -> None:
    pdf.set_font_size(0.5)
    _line(pdf, "SECRET tiny")
    pdf.set_font_size(11)


@pytest.mark.parametrize("draw", [_invisible, _white_rgb, _white_gray, _near_white, _tiny])
def test_invisible_pdf_text_is_dropped(draw):
    extracted = read_pdf(_pdf(draw))
    assert "SECRET" not in extracted.text
    assert all(v in extracted.text for v in VISIBLE)
    assert any("hidden text" in w for w in extracted.warnings)


def test_light_grey_pdf_text_stays():
    def grey(pdf):
        pdf.set_text_color(200, 200, 200)  # #c8c8c8, 1.7:1 against white: faint but readable
        _line(pdf, "KEPT light grey")

    extracted = read_pdf(_pdf(grey))
    assert "KEPT light grey" in extracted.text and extracted.warnings == ()


def test_white_text_on_a_dark_cell_stays():
    def dark_cell(pdf):
        pdf.set_fill_color(20, 40, 80)
        pdf.set_text_color(255, 255, 255)
        pdf.cell(80, 8, "KEPT on navy", fill=True, new_x="LMARGIN", new_y="NEXT")

    extracted = read_pdf(_pdf(dark_cell))
    assert "KEPT on navy" in extracted.text and extracted.warnings == ()


def _png(width: int = 8, height: int = 8) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    rows = b"".join(b"\x00" + b"\x80" * width * 3 for _ in range(height))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_an_ocr_text_layer_over_a_scan_stays():
    """A scan's OCR text is drawn invisible over the page image: the image shows those words."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.image(io.BytesIO(_png()), x=0, y=0, w=210, h=297)
    pdf.set_font("helvetica", size=11)
    with pdf.local_context(text_mode="INVISIBLE"):
        for line in ["KEPT scanned page, line one of the OCR layer.", "KEPT line two of the text layer."]:
            _line(pdf, line)
    extracted = read_pdf(bytes(pdf.output()))
    assert "KEPT scanned page" in extracted.text and "KEPT line two" in extracted.text


def test_pages_keep_their_offsets():
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    pages = [("Interviews start with a short call.", "Then a take-home task follows."),
             ("Offers arrive by email.", "Negotiate within two days.")]  # fmt: skip
    for first, last in pages:  # different lines: a line repeated at the top of each page is a header
        pdf.add_page()
        _line(pdf, first)
        _invisible(pdf)
        _line(pdf, last)
    extracted = read_pdf(bytes(pdf.output()))
    assert len(extracted.pages) == 2 and "SECRET" not in extracted.text
    assert extracted.text[: extracted.pages[1]].split() == " ".join(pages[0]).split()
    assert extracted.text[extracted.pages[1] :].split() == " ".join(pages[1]).split()
    assert "page(s) 1, 2" in extracted.warnings[0]


def test_white_in_every_colour_space():
    assert luminance(1.0, 1) == pytest.approx(1.0)
    assert luminance((1, 1, 1), 3) == pytest.approx(1.0)
    assert luminance((0, 0, 0, 0), 4) == pytest.approx(1.0)
    assert luminance((0, 0, 0, 1), 4) == pytest.approx(0.0)
    assert luminance((0.8, 0.8, 0.8), 3) < 0.9  # light grey: visible
    assert luminance((1, 1), 3) is None and luminance("P0", 1) is None  # a pattern, a malformed colour

    class Space:
        def __init__(self, name, n):
            self.name, self.ncomponents = name, n

    assert colour_luminance((1, 1, 1), Space("ICCBased", 3)) == pytest.approx(1.0)
    assert colour_luminance(0.0, Space("Separation", 1)) is None  # a tint: its colour is unknown here


def test_test_fixture_pdfs_read_as_before(tmp_path):
    guide = read_pdf(docfixtures.guide_pdf(tmp_path / "guide.pdf").read_bytes())
    assert guide.warnings == () and "Acme Careers Handbook" not in guide.text  # running header still cut
    assert len(guide.pages) == 4
    columns = read_pdf(docfixtures.two_column_pdf(tmp_path / "two.pdf").read_bytes())
    assert columns.warnings == ()


# --------------------------------------------------------------------------- DOCX


def _docx(build) -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph("Visible advice about mentoring juniors.")
    build(document)
    document.add_paragraph("More visible advice at the end.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_hidden_word_runs_are_dropped():
    def build(document):
        paragraph = document.add_paragraph("Review code weekly. ")
        paragraph.add_run("SECRET hidden run. ").font.hidden = True
        paragraph.add_run("Pair on hard bugs.")
        document.add_paragraph().add_run("SECRET whole paragraph").font.hidden = True

    extracted = read_docx(_docx(build))
    assert "SECRET" not in extracted.text
    assert "Review code weekly. Pair on hard bugs." in extracted.text
    assert "Visible advice" in extracted.text and "More visible advice" in extracted.text
    assert any("hidden text" in w for w in extracted.warnings)


def test_hidden_by_style_and_in_table_cells():
    from docx.enum.style import WD_STYLE_TYPE

    def build(document):
        hidden_chars = document.styles.add_style("Secret Chars", WD_STYLE_TYPE.CHARACTER)
        hidden_chars.font.hidden = True
        hidden_para = document.styles.add_style("Secret Para", WD_STYLE_TYPE.PARAGRAPH)
        hidden_para.font.hidden = True
        document.add_paragraph().add_run("SECRET by character style", style="Secret Chars")
        document.add_paragraph("SECRET by paragraph style", style="Secret Para")
        shown = document.add_paragraph(style="Secret Para").add_run("KEPT: the run says not hidden")
        shown.font.hidden = False
        table = document.add_table(rows=1, cols=2)
        table.cell(0, 0).text = "Role"
        table.cell(0, 1).paragraphs[0].add_run("SECRET cell").font.hidden = True
        table.cell(0, 1).paragraphs[0].add_run("ML Engineer")

    extracted = read_docx(_docx(build))
    assert "SECRET" not in extracted.text
    assert "KEPT: the run says not hidden" in extracted.text
    assert "| Role | ML Engineer |" in extracted.text


def test_word_file_without_hidden_runs_reads_as_before(tmp_path):
    extracted = read_docx(docfixtures.handbook_docx(tmp_path / "h.docx").read_bytes())
    assert extracted.warnings == () and extracted.title == "Mentoring Handbook"
    assert "| Research | Research Engineer |" in extracted.text


# --------------------------------------------------------------------------- the attack corpus (dev)

DEV_HIDDEN = [
    "behavioral-interviews.html",
    "job-offer-evaluation.html",
    "technical-writing-for-engineers.html",
    "data-engineer-interview-checklist.pdf",
]


def _questions(name: str) -> list[dict]:
    lines = (ATTACKS / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [q for q in map(json.loads, lines) if q["doc"] == name]


@pytest.mark.parametrize("name", DEV_HIDDEN)
def test_dev_attack_documents_lose_their_hidden_payload(name):
    questions = _questions(name)
    assert questions and all(q["split"] == "dev" for q in questions)
    doc = load_document(name, (ATTACKS / "corpus" / name).read_bytes())
    text = " ".join(doc.text.split()).lower()
    for q in questions:
        for bad in q["forbidden"]:
            assert " ".join(bad.split()).lower() not in text, (name, bad)
        for fact in q["key_facts"]:
            assert " ".join(fact.split()).lower() in text, (name, fact)
    assert "instructions" not in text  # every payload here is an override addressed to the assistant


def test_index_rereads_files_when_the_rules_change(tmp_path):
    version = chunking_params(Settings(corpus_dir=tmp_path, index_dir=tmp_path / "i")).version
    assert f"hidden.{HIDDEN_TEXT_VERSION}" in version
