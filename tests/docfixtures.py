"""PDF and DOCX files written by the tests themselves (no binary fixture is committed).

Each layout stresses one thing a PDF reader gets wrong: running headers and footers on every page,
words hyphenated at line ends, two columns whose lines the content stream interleaves, an encrypted
file, a page with no text layer. ``bench/bench_pdf_readers.py`` measures the readers on the same files.
"""

from __future__ import annotations

from pathlib import Path

# One section per page: (heading, paragraphs). Every paragraph holds one fact a test can search for.
GUIDE = [
    (
        "Getting Started",
        [
            "A career in machine learning usually starts with Python, statistics and one small project "
            "that solves a problem you understand well.",
            "Most hiring managers read the project repository before the résumé, so keep it tidy.",
        ],
    ),
    (
        "Building a Portfolio",
        [
            "Three well documented projects impress recruiters more than ten unfinished notebooks.",
            "Publish each project with a short write-up explaining the dataset, the baseline and the result.",
        ],
    ),
    (
        "Preparing for Interviews",
        [
            "Interviewers frequently ask candidates to explain the bias-variance tradeoff on a whiteboard.",
            "Practise explaining regularisation, cross-validation and gradient descent in plain language.",
        ],
    ),
    (
        "Salary Negotiation",
        [
            "Negotiation specialists recommend countering the first offer with a figure about "
            "fifteen percent higher, supported by published salary surveys.",
            "Remember that equity, training budgets and remote work are negotiable as well.",
        ],
    ),
]
HEADER = "Acme Careers Handbook 2026"


def _wrap(text: str, width: int, hyphenate: bool) -> list[str]:
    """Lines of at most ``width`` characters; long words split with a hyphen when ``hyphenate``."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if len(candidate) <= width:
            line = candidate
            continue
        room = width - len(line) - 2  # a space and the hyphen
        if hyphenate and word.isalpha() and len(word) >= 8 and room >= 3:
            cut = min(room, len(word) - 3)
            lines.append(f"{line} {word[:cut]}-".strip())
            line = word[cut:]
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def guide_pdf(path: Path, hyphenate: bool = True, outline: bool = True, heading_size: int = 16) -> Path:
    """Four pages, one ``GUIDE`` section each: a bold heading (and an outline entry), body lines
    hyphenated at a narrow width, the running header ``HEADER`` and a footer ``Page N of 4``. With
    ``heading_size=11`` the headings are set in the body's size: only the outline tells them apart."""
    from fpdf import FPDF

    class Guide(FPDF):
        def header(self) -> None:
            self.set_font("helvetica", "I", 9)
            self.cell(0, 8, HEADER, align="C", new_x="LMARGIN", new_y="NEXT")
            self.ln(4)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("helvetica", "I", 9)
            self.cell(0, 8, f"Page {self.page_no()} of {{nb}}", align="C")

    pdf = Guide()
    pdf.set_title("Acme Careers Handbook")
    for heading, paragraphs in GUIDE:
        pdf.add_page()
        if outline:
            pdf.start_section(heading)
        pdf.set_font("helvetica", "B", heading_size)
        pdf.cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=11)
        for paragraph in paragraphs:
            for line in _wrap(paragraph, 48, hyphenate):
                pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
    pdf.output(str(path))
    return path


TWO_COLUMNS = [
    "Data engineers build the pipelines that move raw events into the warehouse every night.",
    "Machine learning engineers turn a notebook prototype into a service that answers in milliseconds.",
]


def two_column_pdf(path: Path, order: str = "rows") -> Path:
    """One page, two columns of ``TWO_COLUMNS`` text. ``order="rows"`` writes the content stream
    line by line across both columns (as many generators do); ``"columns"`` writes column by column."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    left, right = (_wrap(t, 38, hyphenate=False) for t in TWO_COLUMNS)
    rows = max(len(left), len(right))
    placed = []
    for i in range(rows):
        if i < len(left):
            placed.append((0, i, left[i]))
        if i < len(right):
            placed.append((1, i, right[i]))
    if order == "columns":
        placed.sort()
    for column, row, text in placed:
        pdf.set_xy(10 + column * 100, 20 + row * 6)
        pdf.cell(90, 6, text)
    pdf.output(str(path))
    return path


def encrypted_pdf(path: Path, password: str = "s3cret") -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password=password)
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.cell(0, 10, "This confidential salary table is locked behind a password.")
    pdf.output(str(path))
    return path


def image_only_pdf(path: Path) -> Path:
    """Two pages of drawn shapes and no text: what a scan without OCR looks like to a reader."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.set_fill_color(40, 40, 40)
        for row in range(20):
            pdf.rect(20, 20 + row * 10, 150, 4, style="F")
    pdf.output(str(path))
    return path


HANDBOOK_DOCX = {
    "title": "Mentoring Handbook",
    "sections": [
        (
            "Finding a Mentor",
            "Senior engineers at meetups are often glad to review a junior colleague's code once a month.",
            ["Ask for thirty minutes, not an open-ended commitment", "Bring one concrete question"],
        ),
        (
            "Learning Plan",
            "A twelve week learning plan should alternate theory weeks with project weeks.",
            ["Weeks one to four: linear algebra refresher", "Weeks five to eight: a Kaggle competition"],
        ),
    ],
    "table": [("Role", "Typical first title"), ("Research", "Research Engineer"), ("Product", "ML Engineer")],
}


def handbook_docx(path: Path, extra: str = "") -> Path:
    """A Word file with a title, ``Heading 1`` sections, bullet lists and a table."""
    import docx

    document = docx.Document()
    document.add_heading(HANDBOOK_DOCX["title"], level=0)
    for heading, paragraph, items in HANDBOOK_DOCX["sections"]:
        document.add_heading(heading, level=1)
        document.add_paragraph(paragraph)
        for item in items:
            document.add_paragraph(item, style="List Bullet")
    if extra:
        document.add_paragraph(extra)
    rows = HANDBOOK_DOCX["table"]
    table = document.add_table(rows=len(rows), cols=2)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.save(str(path))
    return path
