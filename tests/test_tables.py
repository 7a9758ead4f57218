from careerqa.text.tables import linearize_tables

SEED_TABLE = """These two frameworks are the dominant tools:
Feature | TensorFlow | PyTorch |
---|---|---|
Developed By | Google Brain | Facebook AI Research (FAIR) |
Computational Graph | Static (defined before running) | Dynamic (defined on the fly) |
Data Expertise follows."""


def test_rows_name_their_columns():
    text = linearize_tables(SEED_TABLE)
    assert text.splitlines() == [
        "These two frameworks are the dominant tools:",
        "TensorFlow — Developed By: Google Brain.",
        "PyTorch — Developed By: Facebook AI Research (FAIR).",
        "TensorFlow — Computational Graph: Static (defined before running).",
        "PyTorch — Computational Graph: Dynamic (defined on the fly).",
        "Data Expertise follows.",
    ]


def test_markdown_table_with_outer_pipes_and_alignment():
    text = "| Name | Use |\n|:---|---:|\n| Torch | Deep learning |\n| | empty label |"
    assert linearize_tables(text) == "Use — Torch: Deep learning.\nUse: empty label."


def test_not_a_table_is_left_alone():
    for text in (
        "a | b without a separator line\nnext line",
        "Feature | A | B |\n---|---|---|\nrow | with | too | many | cells |",
        "no pipes at all.",
        "x | y\n---|---",  # a header and separator but no rows
    ):
        assert linearize_tables(text) == text


def test_rows_after_a_mismatched_row_are_kept_verbatim():
    text = "A | B\n---|---\nr1 | x\nbad | row | extra\nr2 | y"
    assert linearize_tables(text) == "B — r1: x.\nbad | row | extra\nr2 | y"
