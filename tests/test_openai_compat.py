"""Unit tests for what the OpenAI endpoint reads and sends: careerqa answers sent back as history,
the client's ``stop`` / ``max_tokens``, and a client's background task prompts."""

from __future__ import annotations

import json

import pytest

from careerqa.web.openai_compat import Shape, plain_answer
from careerqa.web.schemas import OpenAIChatRequest, history_turns
from careerqa.web.tasks import is_task, task_reply

SENT = (
    "Linear algebra matters for neural networks [1]. Calculus drives backpropagation [2].\n\n"
    "Sources:\n[1] maths.md › Maths: “Linear algebra …”\n\n[2] maths.md › Maths: “Calculus …”"
)


def test_a_careerqa_answer_sent_back_is_read_as_its_plain_text():
    plain = "Linear algebra matters for neural networks. Calculus drives backpropagation."
    assert plain_answer(SENT) == plain


def test_reasoning_blocks_and_an_older_revision_note_are_taken_off():
    kept = '<details type="reasoning">\n<summary>Thought</summary>\ndraft [1]\n</details>\n' + SENT
    assert plain_answer(kept) == plain_answer(SENT)
    older = "Draft text [1].\n\n(Checked against the sources, the answer is: Checked text [1].)"
    assert plain_answer(older) == "Checked text."


def test_other_assistant_text_only_loses_its_markers():
    assert plain_answer("Sources say yes [3], mostly.") == "Sources say yes, mostly."
    assert plain_answer("See Sources: the web.") == "See Sources: the web."  # not a trailer


def test_history_pairs_questions_with_plain_answers():
    turns = history_turns([("user", "What maths?"), ("assistant", SENT), ("user", "why?")])
    assert turns == [("What maths?", plain_answer(SENT)), ("why?", "")]


def words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize(
    ("shape", "content", "expected"),
    [
        (Shape(), "a b c", ("a b c", "stop")),
        (Shape(stop=("\n\nSources:",)), "Answer [1].\n\nSources:\n[1] x", ("Answer [1].", "stop")),
        (Shape(stop=("c", "b")), "a b c", ("a ", "stop")),
        (Shape(max_tokens=2), "one two three four", ("one two", "length")),
        (Shape(max_tokens=9), "one two", ("one two", "stop")),
    ],
)
def test_shape_applies_stop_then_max_tokens(shape, content, expected):
    assert shape.apply(content, words) == expected


def request(**fields: object) -> OpenAIChatRequest:
    return OpenAIChatRequest.model_validate({"messages": [{"role": "user", "content": "hi"}], **fields})


def test_known_options_are_read_and_unknown_ones_accepted():
    body = request(stop="END", max_completion_tokens=5, temperature=0.3, user="u", tools=[], other={"x": 1})
    assert body.shape() == Shape(("END",), 5)
    assert request(stop=["a", "b"], max_tokens=7).shape() == Shape(("a", "b"), 7)
    body.check_supported()
    with pytest.raises(Exception, match="one answer per request"):
        request(n=3).check_supported()


TITLE = """### Task:
Generate a concise title for the chat.
### Output:
JSON format: { "title": "your title" }
### Chat History:
<chat_history>
USER: What does a data engineer do all day at work?
ASSISTANT: Builds pipelines [1].
</chat_history>"""


def test_task_prompts_are_told_apart_from_questions():
    assert is_task(TITLE) and is_task("<chat_history>\nUSER: hi\n</chat_history>\nSuggest follow-ups")
    assert not is_task("What is a task in Airflow?") and not is_task("## Tasks of an ML engineer?")


@pytest.mark.parametrize(
    ("asked", "reply"),
    [
        ('JSON format: { "title": "t" }', {"title": "What does a data engineer do"}),
        ('JSON format: { "tags": ["tag1"] }', {"tags": ["careers"]}),
        ('JSON format: { "follow_ups": ["q1?"] }', {"follow_ups": []}),
        ('JSON format: { "queries": ["q"] }', {"queries": []}),
    ],
)
def test_a_task_gets_the_json_it_asks_for(asked, reply):
    prompt = TITLE.replace('JSON format: { "title": "your title" }', asked)
    assert json.loads(task_reply(prompt)) == reply


def test_a_long_task_prompt_is_valid_where_a_long_question_is_not():
    long_task = TITLE + "\n" + "x " * 2000
    assert request(messages=[{"role": "user", "content": long_task}]).task()
    with pytest.raises(ValueError, match="over"):
        request(messages=[{"role": "user", "content": "why " * 400}])
