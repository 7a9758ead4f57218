"""``careerqa ask``/``search --server URL``: the question goes to a running server (a real uvicorn server
with the fake models), and the output is what the same command prints when it answers in-process."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

import careerqa.cli as cli
from careerqa.cli.context import CliContext
from careerqa.engine.core import Engine
from careerqa.web.app import create_app

from .conftest import FakeEmbedder, make_settings
from .fakes import FakeGenerator
from .helpers import LONG_ANSWER, QUESTION, live_server

runner = CliRunner()


@pytest.fixture
def reply() -> str:
    return LONG_ANSWER


@pytest.fixture
def both(tmp_path, monkeypatch, reply) -> Iterator[dict]:
    """A server over a corpus, and the CLI's in-process engine over the same corpus and index."""
    settings = make_settings(tmp_path)
    monkeypatch.delenv("CAREERQA_SERVER_URL", raising=False)

    def engine() -> Engine:
        return Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda m: reply))

    obj = CliContext(engine_factory=lambda corpus, index_dir, quiet=False, **kw: engine())
    with live_server(create_app(settings, engine=engine())) as url:
        yield {"url": url, "settings": settings, "obj": obj}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _no_engine(*args, **kwargs) -> Engine:
    pytest.fail("answered in-process")


NO_ENGINE = CliContext(engine_factory=_no_engine)  # for the runs that must ask the server


def _run(*args: str, obj: CliContext = NO_ENGINE):
    return runner.invoke(cli.app, list(args), obj=obj)


def test_search_json_is_the_same_as_in_process(both):
    local = _run("search", "Khan Academy maths", "--json", "--top-k", "3", obj=both["obj"])
    remote = _run("search", "Khan Academy maths", "--json", "--top-k", "3", "--server", both["url"])
    assert local.exit_code == remote.exit_code == 0, remote.output
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    assert json.loads(remote.stdout)["results"][0]["source"] == "maths.md"


def test_search_text_is_the_same_as_in_process(both):
    local = _run("search", "kubernetes containers", obj=both["obj"])
    remote = _run("search", "kubernetes containers", "--server", both["url"])
    assert remote.exit_code == 0 and remote.stdout == local.stdout
    assert "cloud.md" in remote.stdout


def test_ask_streams_and_prints_sources_as_in_process(both):
    local = _run("ask", QUESTION, obj=both["obj"])
    remote = _run("ask", QUESTION, "--server", both["url"] + "/")  # a trailing slash is fine
    assert remote.exit_code == 0, remote.output
    assert remote.stdout == local.stdout
    assert "Khan Academy and MIT OpenCourseWare" in remote.stdout and "[1] maths.md" in remote.stdout


UNCITED = "Khan Academy and MIT OpenCourseWare have free courses on all three topics."


@pytest.mark.parametrize("reply", [UNCITED])
def test_ask_prints_the_checked_answer_when_checking_changed_the_stream(both):
    local = _run("ask", QUESTION, obj=both["obj"])
    remote = _run("ask", QUESTION, "--server", both["url"])  # told by the server's `revised` event
    assert remote.exit_code == 0, remote.output
    assert "Verified answer (citations checked):" in local.stdout
    assert remote.stdout == local.stdout


def test_ask_json_and_no_stream_as_in_process(both):
    local = json.loads(_run("ask", QUESTION, "--json", obj=both["obj"]).stdout)
    remote = json.loads(_run("ask", QUESTION, "--json", "--server", both["url"]).stdout)
    assert set(remote) == set(local)  # no index_version: the shape of a local answer
    for key in ("answer", "citations", "retrieved", "abstained", "sentences", "route"):
        assert remote[key] == local[key], key
    # Asked again, the server answers from its cache; the printed answer is the same.
    again = _run("ask", QUESTION, "--no-stream", "--server", both["url"])
    assert again.stdout == _run("ask", QUESTION, "--no-stream", obj=both["obj"]).stdout
    assert json.loads(_run("ask", QUESTION, "--json", "--server", both["url"]).stdout)["route"] == "cache"


def test_the_server_url_setting_is_used(both, monkeypatch):
    monkeypatch.setenv("CAREERQA_SERVER_URL", both["url"])
    result = _run("search", "Khan Academy maths", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["results"]


def test_an_empty_server_option_answers_in_process(both, monkeypatch):
    monkeypatch.setenv("CAREERQA_SERVER_URL", f"http://127.0.0.1:{_free_port()}")
    result = _run("search", "Khan Academy maths", "--json", "--server", "", obj=both["obj"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", [["search", "maths"], ["ask", "what maths do I need?"]])
def test_no_server_there_is_a_clear_error(command):
    url = f"http://127.0.0.1:{_free_port()}"
    result = _run(*command, "--server", url)
    assert result.exit_code == 1
    assert f"error: no careerqa server answers at {url}" in result.stderr
    assert "careerqa serve" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["search", "maths", "--server", "localhost:8000"], "must start with http://"),
        (["search", "maths", "--server", "http://x", "--index-dir", "idx"], "do not apply with a server"),
    ],
)
def test_bad_server_options_exit_2(args, message):
    result = _run(*args)
    assert result.exit_code == 2 and message in result.stderr


def test_the_server_refusing_a_request_is_bad_input(both):
    result = _run("search", "   ", "--server", both["url"])
    assert result.exit_code == 2
    assert f"the server at {both['url']} said 422" in result.stderr
