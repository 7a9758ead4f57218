"""Form rules (form.py), the focus check (focus.py) and relevance (relevance.py), alone and in answering."""

from __future__ import annotations

import re

from careerqa.answer.focus import FocusIndex
from careerqa.answer.form import MarkupFilter, is_copy, place_markers, select, strip_markup
from careerqa.answer.grounding import split_sentences
from careerqa.engine.core import Engine
from careerqa.generate.prompts import ABSTAIN_TEXT

from .conftest import make_settings
from .fakes import FakeGenerator


def _filtered(pieces: list[str]) -> str:
    f = MarkupFilter()
    return "".join(f.feed(p) for p in pieces) + f.finish()


def test_tags_and_labels_never_pass_the_stream_filter():
    pieces = ["<pas", 'sage n="1" source="a.txt">', "Answer: Pandas ", "is great", "</ passage> [1]"]
    pieces.append(".<|im_end|>")
    assert _filtered(pieces) == "Pandas is great [1]."
    # other angle-bracket text is content (a passage may quote HTML); the web page escapes it
    assert _filtered(["escape <im", "g src=x> always [1]."]) == "escape <img src=x> always [1]."
    assert _filtered(["Passage 2", ": Docker packages apps [2]."]) == "Docker packages apps [2]."
    assert _filtered(["<passage"]) == ""  # an unfinished tag at the end is dropped


def test_ordinary_text_streams_unchanged():
    text = "Answers vary: x < 5 is fine, a<b too. Pass the user a question [1]."
    assert _filtered([text[i : i + 3] for i in range(0, len(text), 3)]) == text
    assert strip_markup("Questions about passages are fine [1].") == "Questions about passages are fine [1]."


def test_labels_inside_the_answer_are_cut():
    assert strip_markup("Docker [1].\nAssistant: more\nQuestion: next") == "Docker [1].\nmore\nnext"


def test_markers_leave_open_parentheses_and_quotes():
    text = "Maths (algebra, hypothesis testing. Understanding uncertainty [1]) matters [1]."
    fixed = "Maths (algebra, hypothesis testing. Understanding uncertainty) [1] matters [1]."
    assert place_markers(text) == fixed
    quoted = "They say “start small [2]” and ship [2]."
    assert place_markers(quoted) == "They say “start small” [2] and ship [2]."
    assert place_markers("Plain [1]. Fine (really) [2].") == "Plain [1]. Fine (really) [2]."


def test_a_fragment_inside_parentheses_stays_in_its_sentence():
    sentences = split_sentences("Maths (algebra, testing. Understanding uncertainty) [1]. Next [2].")
    assert sentences == ["Maths (algebra, testing. Understanding uncertainty) [1].", "Next [2]."]


def test_copy_dumps_are_cut_to_the_most_relevant_sentences():
    passage = "Pandas is a library for data analysis and manipulation. NumPy handles numerical arrays well."
    assert is_copy("Pandas is a library for data analysis and manipulation [1].", passage)
    assert not is_copy("Pandas helps [1].", passage)  # too short to be a copy
    assert not is_copy("Pandas is a library for data cleaning and plotting too [1].", passage)
    sentences = ["a", "b", "c", "d", "e"]
    keep = select(sentences, [0.9, 0.2, 0.8, 0.7, 0.6], [True, False, True, True, False], max_sentences=3)
    assert keep == [0, 2, 4]  # two copies at most (0 and 2), then the best other sentence, in order
    assert select(sentences, [0.1, 0.2, 0.3, 0.4, 0.5], [False] * 5, max_sentences=2) == [3, 4]


def test_focus_coverage_weights_rare_terms():
    texts = ["AI engineers need Python.", "AI engineers use cloud tools.", "Salaries vary by country."]
    index = FocusIndex(texts)
    focus = index.check("what salary does an AI engineer earn in Germany?", ["AI engineers need Python."])
    assert focus.missing == ("salary", "earn", "germany")
    assert focus.coverage < 0.3
    covered = index.check("which tools do AI engineers use?", ["AI engineers use cloud tools."])
    assert covered.missing == () and covered.coverage == 1.0
    # the words that frame a question are not its focus: "mean" is in no passage, CI/CD is the subject
    framed = index.check("what does CI/CD for ML mean?", ["AI engineers use cloud tools."])
    assert framed.terms == () and framed.coverage == 1.0


def _engine(tmp_path, fake_embedder, replies, **changes):
    settings = make_settings(tmp_path).replace(**changes)
    return Engine(settings, embedder=fake_embedder, generator=FakeGenerator(replies))


def _number(messages, source: str) -> int:
    found = re.findall(r'<passage n="(\d+)" source="([^"]+)"', messages[-1]["content"])
    return next(int(n) for n, s in found if s == source)


def test_leaked_markup_never_reaches_the_user(tmp_path, fake_embedder):
    def reply(messages):
        n = _number(messages, "cloud.md")
        text = f"Docker packages a model with its dependencies [{n}]."
        return f'<passage n="{n}">{text}</passage>\nQuestion: more?'

    engine = _engine(tmp_path, fake_embedder, reply)
    streamed: list[str] = []
    answer = engine.ask("what does docker package with its dependencies?", on_text=streamed.append)
    assert answer.text == "Docker packages a model with its dependencies [1]."
    assert "<" not in "".join(streamed) and "Question" not in "".join(streamed)


def test_copy_dump_is_cut_to_the_sentence_limit(tmp_path, fake_embedder):
    def reply(messages):
        n = _number(messages, "maths.md")
        return (
            f"Linear algebra, calculus and statistics are the foundation of machine learning [{n}]. "
            f"Vectors and matrices describe how data flows through a neural network [{n}]. "
            f"Gradients tell the optimiser where to go [{n}]. "
            f"Khan Academy and MIT OpenCourseWare have free courses on all three topics [{n}]."
        )

    engine = _engine(tmp_path, fake_embedder, reply, max_answer_sentences=3)
    answer = engine.ask("which free courses teach linear algebra and calculus?")
    assert not answer.abstained
    kept = split_sentences(answer.text)
    assert len(kept) <= 2  # four verbatim copies: the two closest to the question stay
    assert any("Khan Academy" in s for s in kept)


def test_off_target_twice_is_refused_with_the_reason(tmp_path, fake_embedder):
    def reply(messages):
        return "Teamwork and code review are daily work in most AI teams [1]."

    question = "where are free maths courses? Khan Academy or MIT OpenCourseWare?"
    engine = _engine(tmp_path / "a", fake_embedder, reply, rules_off="quote_fallback")
    answer = engine.ask(question)
    assert answer.abstained and answer.text == ABSTAIN_TEXT
    assert answer.abstain_reason is not None and answer.abstain_reason.startswith("relevance")
    # with the quote fallback, the passage line that names both is the answer, cited
    quoted = _engine(tmp_path / "b", fake_embedder, reply).ask(question)
    assert not quoted.abstained and quoted.rules == ("quote_fallback",)
    assert "Khan Academy" in quoted.text and quoted.text.endswith("[1].") and "Teamwork" not in quoted.text


def test_failure_kinds_tag_each_way_an_answer_goes_wrong():
    from careerqa.evals.failures import failure_counts, failure_kinds

    def record(answerable=True, abstained=False, reason=None, facts=1.0, hit=True, **form):
        answer = {"abstained": abstained, "abstain_reason": reason, "key_fact_recall": facts, "form": form}
        return {"answerable": answerable, "retrieval": {"hit@5": hit}, "answer": answer}

    assert failure_kinds(record()) == []
    assert failure_kinds(record(abstained=True, reason="focus: no passage mentions x", facts=0)) == [
        "refused-answerable",
        "refused-answerable:focus",
    ]
    assert failure_kinds(record(answerable=False)) == ["answered-unanswerable"]
    assert failure_kinds(record(facts=0.0, hit=False)) == ["retrieval-miss", "off-target"]
    assert failure_kinds(record(sentences=9)) == ["copy-dump"]
    assert failure_kinds(record(sentences=9, route="faq")) == []
    assert failure_kinds(record(copied_sentences=3, markup=True, marker_in_bracket=True)) == [
        "copy-dump",
        "markup",
        "marker-in-bracket",
    ]
    counts = failure_counts([record(), record(answerable=False), record(sentences=5)])
    assert counts["answered-unanswerable"] == 1 and counts["copy-dump"] == 1 and counts["markup"] == 0


def test_a_refusal_with_the_terms_in_the_passages_is_retried_once(tmp_path, fake_embedder):
    def reply(messages):
        if messages[-1]["content"].count("<passage ") == 1:
            return "Kubernetes schedules containers across a cluster [1]."
        return "The corpus does not contain the answer to this question."

    engine = _engine(tmp_path, fake_embedder, reply)
    streamed: list[str] = []
    answer = engine.ask("what does kubernetes schedule across a cluster?", on_text=streamed.append)
    assert not answer.abstained and "Kubernetes schedules containers" in answer.text
    assert "".join(streamed) == answer.text and "retry" in answer.timings_ms
    # a refusal for a question whose terms are not in the passages stays a refusal, without a retry
    engine = _engine(tmp_path / "b", fake_embedder, reply, min_dense_score=0.0)
    refused = engine.ask("which pizza topping is best?")
    assert refused.abstained and "retry" not in refused.timings_ms


def test_the_tail_of_an_opening_tag_at_the_start_is_cut():
    tags = ['<passage n="1" source="a.txt" section="What’s the must-have skill for AI jobs?">']
    pieces = ["What’s the must", '-have skill for AI jobs?">Linear algebra', " and calculus [1]."]
    f = MarkupFilter(tags)
    assert "".join(f.feed(p) for p in pieces) + f.finish() == "Linear algebra and calculus [1]."
    f = MarkupFilter(tags)
    assert f.feed("Python ") == "Python "  # not the start of a tag's tail: shown at once
    assert strip_markup('Skills?" source="a.txt">Python [1].') == "Python [1]."
    f = MarkupFilter(['<passage n="1" section="What is it?">'])
    leaked = '<passage n="1">What is it?">Linear algebra [1].</passage>'
    assert f.feed(leaked) + f.finish() == "Linear algebra [1]."


def test_a_copied_fragment_is_judged_by_the_passage_line_it_comes_from():
    from careerqa.answer.relevance import in_context

    table = "| Framework | Production tools |\n|---|---|\n| PyTorch | TorchScript, ONNX |"
    row = in_context("TorchScript, ONNX [1]", table)  # the row as the prompt shows it
    assert row is not None and "PyTorch" in row and "Production tools" in row
    prose = "Unsupervised: K-Means, PCA. Other things."
    assert in_context("K-Means [2]", prose) == "Unsupervised: K-Means, PCA."
    assert in_context("Other things.", "Unsupervised: K-Means, PCA. Other things.") is None  # says no more
    assert in_context("Spark [1]", "Unsupervised: K-Means, PCA.") is None


def test_a_bare_answer_copied_from_the_right_table_row_is_on_target(tmp_path, fake_embedder):
    table = "# Frameworks\n\n| Framework | Production tools |\n|---|---|\n| PyTorch | TorchScript, ONNX |\n"
    settings = make_settings(tmp_path, {"frameworks.md": table})

    def reply(messages):
        return f"TorchScript, ONNX [{_number(messages, 'frameworks.md')}]."

    engine = Engine(settings, embedder=fake_embedder, generator=FakeGenerator(reply))
    answer = engine.ask("Which production tools does PyTorch have?")
    assert not answer.abstained, answer.abstain_reason
    # the bare list is shown as the table row it comes from, which says what it lists
    assert answer.text == "Production tools — PyTorch: TorchScript, ONNX [1]."


def test_an_answer_that_only_repeats_the_question_is_an_echo():
    from careerqa.answer.relevance import echoes

    question = "do I really need maths for AI or can I just code?"
    assert echoes("No, you do not need maths for AI [1].", question)
    assert echoes("Yes [2].", question) and echoes("You can just code [1].", question)
    assert not echoes("Linear algebra and calculus are the foundation of machine learning [1].", question)
    assert echoes("Yes, SQL is still used [1].", "is sql still used?", "is SQL still used")


def test_a_bare_yes_is_retried_for_an_answer_that_names_its_evidence(tmp_path, fake_embedder):
    def reply(messages):
        if messages[-1]["content"].count("<passage ") == 1:  # the retry: the closest passage alone
            return "Kubernetes schedules containers across a cluster [1]."
        return f"Yes, Kubernetes schedules containers [{_number(messages, 'cloud.md')}]."

    engine = _engine(tmp_path, fake_embedder, reply)
    answer = engine.ask("does kubernetes schedule containers?")
    assert not answer.abstained, answer.abstain_reason
    assert answer.text == "Kubernetes schedules containers across a cluster [1]."
    assert "retry" in answer.timings_ms

    # a retry that only says yes again does not better it: the first answer stays, cited
    def always_yes(messages):
        n = _number(messages, "cloud.md") if messages[-1]["content"].count("<passage ") > 1 else 1
        return f"Yes, Kubernetes schedules containers [{n}]."

    kept = _engine(tmp_path / "b", fake_embedder, always_yes).ask("does kubernetes schedule containers?")
    assert not kept.abstained, kept.abstain_reason
    assert kept.text == "Yes, Kubernetes schedules containers [1]." and "retry" in kept.timings_ms
    assert kept.citations[0].hit.chunk.source == "cloud.md"


def test_a_sentence_naming_the_prompts_source_file_is_markup_not_an_answer(tmp_path, fake_embedder):
    def reply(messages):
        n = _number(messages, "cloud.md")
        leaked = f"Cloud.md: Kubernetes schedules containers [{n}]."  # supported, but names the file
        return f"{leaked} Kubernetes schedules containers across a cluster [{n}]."

    answer = _engine(tmp_path, fake_embedder, reply).ask("what does kubernetes schedule across a cluster?")
    assert not answer.abstained, answer.abstain_reason
    assert answer.text == "Kubernetes schedules containers across a cluster [1]."


def test_a_bare_list_copied_from_a_list_item_is_shown_as_that_item(tmp_path, fake_embedder):
    doc = "# Metrics\n\nModels are scored in many ways.\n\n- Classification: Accuracy, Precision, Recall\n"
    settings = make_settings(tmp_path, {"metrics.md": doc})

    def reply(messages):
        return f"Accuracy, Precision, Recall [{_number(messages, 'metrics.md')}]."

    answer = Engine(settings, embedder=fake_embedder, generator=FakeGenerator(reply)).ask(
        "Which metrics evaluate classification models?"
    )
    assert answer.text == "Classification: Accuracy, Precision, Recall [1]."
    # a clause is not a bare list: it stays as the model wrote it
    from careerqa.answer.checking import _whole

    line = "Kubernetes schedules containers across a cluster, and Docker packages a model."
    assert _whole("Kubernetes schedules containers across a cluster [1].", line) == (
        "Kubernetes schedules containers across a cluster [1]."
    )
