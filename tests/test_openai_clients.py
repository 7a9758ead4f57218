"""Real OpenAI-style clients against a real uvicorn server (fake models): the openai SDK and Simon
Willison's ``llm`` CLI in chat mode. Their follow-ups send careerqa's own answers back as history,
``Sources:`` block and markers included; the options such clients send are honoured or ignored,
never refused; a client's background task prompts get a 200."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import openai
import pytest

from careerqa.engine.core import Engine
from careerqa.generate.prompts import ABSTAIN_TEXT, REWRITE_PROMPT
from careerqa.web.app import create_app

from .conftest import FakeEmbedder, make_settings
from .fakes import FakeGenerator
from .helpers import live_server

# Five two-turn conversations: a question, then a follow-up that needs it, and the standalone
# question the (fake) model rewrites the follow-up into.
CONVERSATIONS = [
    ("What maths matters for AI?", "why the second one?", "Why does calculus matter for machine learning?"),
    ("What does Kubernetes do?", "and Docker?", "What does Docker do with a model?"),
    ("Which soft skills matter?", "why is that one important?", "Why does communication matter?"),
    (
        "Where can I learn maths for free?",
        "which topics do they cover?",
        "Which topics do the free maths courses cover?",
    ),
    ("What catches data drift?", "when does it happen?", "When does monitoring catch data drift?"),
]
STANDALONE = {follow: standalone for _, follow, standalone in CONVERSATIONS}
_PASSAGE_1 = re.compile(r'<passage n="1"[^>]*>\n(.*?)\n</passage>', re.DOTALL)


class CorpusModel:
    """A fake model that behaves: a rewrite turns a known follow-up into its standalone question
    (and keeps the conversation it was shown); an answer quotes the first sentence of passage 1."""

    def __init__(self) -> None:
        self.rewrites: list[str] = []

    def __call__(self, messages: list[dict[str, str]]) -> str:
        user = messages[-1]["content"]
        if messages[0]["content"] == REWRITE_PROMPT:
            self.rewrites.append(user)
            return STANDALONE.get(user.rsplit("Last message: ", 1)[-1].strip(), "")
        found = _PASSAGE_1.search(user)
        if found is None:
            return ABSTAIN_TEXT
        asked = set(_words(user.rsplit("Question:", 1)[-1]))
        sentences = re.split(r"(?<=[.!?])\s+", " ".join(found.group(1).lstrip("# ").split()))
        best = max(sentences, key=lambda s: len(asked & set(_words(s))))
        return best.rstrip(".") + " [1]."


def _words(text: str) -> list[str]:
    return [w.rstrip("s") for w in re.findall(r"[a-z]{3,}", text.lower())]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict]:
    # "What does Kubernetes do?" shares one of its words with its passage: the bag-of-words fake puts
    # it at 0.2 cosine, on the suite's floor; these tests are about the conversation, not that floor
    settings = replace(make_settings(tmp_path_factory.mktemp("clients")), min_dense_score=0.1)
    model = CorpusModel()
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(model))
    app = create_app(settings, engine=engine)
    with live_server(app) as url:
        yield {"url": url, "model": model, "client": openai.OpenAI(base_url=url + "/v1", api_key="unused")}


def sdk_turn(client: openai.OpenAI, messages: list[dict], **options: object) -> str:
    reply = client.chat.completions.create(model="careerqa", messages=messages, **options)  # type: ignore[call-overload]
    return reply.choices[0].message.content or ""


def answer_text(content: str) -> str:
    """What a client shows, without the sources list."""
    return content.split("\n\nSources:")[0].strip()


# --- the openai SDK -------------------------------------------------------------------------------------


def test_sdk_follow_ups_resolve_with_careerqa_answers_as_history(server):
    client = server["client"]
    for first, follow, standalone in CONVERSATIONS:
        said = sdk_turn(client, [{"role": "user", "content": first}])
        assert "\n\nSources:\n[1] " in said  # what the client keeps and sends back
        messages = [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": first},
            {"role": "assistant", "content": said},
            {"role": "user", "content": follow},
        ]
        second = client.chat.completions.create(model="careerqa", messages=messages)  # type: ignore[arg-type]
        careerqa = second.model_extra["careerqa"]  # type: ignore[index]
        assert careerqa["standalone_question"] == standalone and not careerqa["abstained"]
        shown = server["model"].rewrites[-1]
        assert "Sources:" not in shown and "[1]" not in shown and answer_text(said)[:-5] in shown


def test_sdk_stream_shows_the_answer_once_with_its_sources(server):
    client = server["client"]
    stream = client.chat.completions.create(
        model="careerqa",
        messages=[{"role": "user", "content": "What does Kubernetes do?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    content, reasoning, usage = "", "", None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            content += choice.delta.content or ""
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
    text = answer_text(content)
    assert text.endswith("[1].") and content.count(text) == 1 and "\n\nSources:\n[1] cloud.md" in content
    assert reasoning.strip() == text  # the draft, live; the checked answer, once, as the content
    assert usage is not None and usage.total_tokens > 0


def test_sdk_options_are_honoured_or_ignored(server):
    client = server["client"]
    ask = [{"role": "user", "content": "What does Kubernetes do?"}]
    whole = sdk_turn(client, ask)
    ignored = dict(temperature=0.7, top_p=0.9, seed=3, user="someone", presence_penalty=0.1, n=1)
    assert sdk_turn(client, ask, **ignored, extra_body={"some_new_option": {"x": 1}}) == whole
    assert sdk_turn(client, ask, stop=["\n\nSources:"]) == answer_text(whole)
    cut = client.chat.completions.create(model="careerqa", messages=ask, max_tokens=3)  # type: ignore[arg-type]
    assert cut.choices[0].finish_reason == "length"
    shown = cut.choices[0].message.content or "-"
    assert whole.startswith(shown) and len(shown) < 40
    with pytest.raises(openai.BadRequestError, match="one answer per request"):
        client.chat.completions.create(model="careerqa", messages=ask, n=2)  # type: ignore[arg-type]


OPEN_WEBUI_TITLE = """### Task:
Generate a concise, 3-5 word title with an emoji summarizing the chat history.
### Guidelines:
- The title should clearly represent the main theme or subject of the conversation.
- Use emojis that enhance understanding of the topic, but avoid quotation marks or special formatting.
- Write the title in the chat's primary language; default to English if multilingual.
- Prioritize accuracy over excessive creativity; keep it clear and simple.
- Your entire response must consist solely of the JSON object, without any introductory or concluding text.
- The output must be a single, raw JSON object, without any markdown code fences or other encapsulation.
### Output:
JSON format: { "title": "your concise title here" }
### Examples:
- { "title": "📉 Stock Market Trends" },
- { "title": "🍪 Perfect Chocolate Chip Recipe" },
### Chat History:
<chat_history>
USER: What does Kubernetes do?
ASSISTANT: Kubernetes schedules containers across a cluster [1].

Sources:
[1] cloud.md › Cloud and MLOps: “Kubernetes schedules containers across a cluster, and …”
</chat_history>"""


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_task_prompt_gets_a_reply_not_a_422(server, stream):
    assert len(OPEN_WEBUI_TITLE) > 1000
    ask = [{"role": "user", "content": OPEN_WEBUI_TITLE}]
    if stream:
        client = server["client"]
        pieces = client.chat.completions.create(
            model="careerqa", messages=ask, stream=True  # type: ignore[arg-type]
        )
        content = "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
    else:
        content = sdk_turn(server["client"], ask)
    assert content == '{"title": "What does Kubernetes do"}'


# --- the llm CLI ----------------------------------------------------------------------------------------


def llm_chat(url: str, home: Path, lines: list[str]) -> str:
    """``llm chat -m careerqa`` against ``url``, the ``lines`` typed one after the other."""
    home.mkdir(exist_ok=True)
    (home / "extra-openai-models.yaml").write_text(
        f'- model_id: careerqa\n  model_name: careerqa\n  api_base: "{url}/v1"\n  api_key_name: careerqa\n',
        encoding="utf-8",
    )
    (home / "keys.json").write_text('{"careerqa": "unused"}', encoding="utf-8")
    llm = shutil.which("llm", path=str(Path(sys.executable).parent)) or "llm"
    env = {**os.environ, "LLM_USER_PATH": str(home)}
    done = subprocess.run(
        [llm, "chat", "-m", "careerqa"],
        input="\n".join([*lines, "exit"]) + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_llm_chat_follow_ups_are_answered_as_the_sdk_answers_them(server, tmp_path):
    client = server["client"]
    for i, (first, follow, _) in enumerate(CONVERSATIONS):
        said = sdk_turn(client, [{"role": "user", "content": first}])
        messages = [
            {"role": "user", "content": first},
            {"role": "assistant", "content": said},
            {"role": "user", "content": follow},
        ]
        expected = answer_text(sdk_turn(client, messages))
        out = llm_chat(server["url"], tmp_path / f"llm-{i}", [first, follow])
        replies = [answer_text(r) for r in out.split("\n> ")[1:] if r.strip()]  # after each prompt
        assert replies == [answer_text(said), expected], out
        assert ABSTAIN_TEXT not in out
        assert server["model"].rewrites[-1].rsplit("Last message: ", 1)[-1].strip() == follow
