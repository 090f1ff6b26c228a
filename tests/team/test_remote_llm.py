"""Team mode's chat model (issue 29): the Generator over llama.cpp's OpenAI-compatible server
(models/remote_llm.py), against a real `python -m llama_cpp.server` on loopback running the default model."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealroom.core.protocols import Generator
from sealroom.core.runtime.errors import ModelError, SealroomError
from sealroom.models.remote_llm import ServerGenerator, ServerRefused, ServerUnreachable
from tests.team.llm_server import free_port, start_llama_server

STORY = "Write a long story about a lighthouse keeper."


@pytest.fixture
def served(llm_server: str) -> Iterator[ServerGenerator]:
    model = ServerGenerator(llm_server)
    model.warm_up()
    yield model
    model.close()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generator]:
    """The in-process default model, as the app runs it (the same file the server serves)."""
    from sealroom.core.components import make_generator
    from sealroom.core.runtime.config import Settings

    home = tmp_path_factory.mktemp("local-home")
    (home / "logs").mkdir()
    model, _ = make_generator(home, Settings())
    model.warm_up()
    yield model
    model.close()


@pytest.mark.slow
def test_an_answer_streams_in_several_pieces_within_its_budget(served: ServerGenerator):
    pieces = list(served.generate(prompt=STORY, max_tokens=12))
    assert len(pieces) >= 4 and all(isinstance(p, str) and p for p in pieces)
    assert served.finish_reason == "length"
    assert served.count_tokens(["".join(pieces)])[0] <= 14  # a token may split into two on recount


@pytest.mark.slow
def test_a_stop_sequence_ends_the_answer_before_it(served: ServerGenerator):
    text = "".join(served.generate(prompt="Count: one, two, three,", max_tokens=40, stop=[" five"]))
    assert text and "five" not in text and served.finish_reason == "stop"
    assert "four" in text  # it did write up to the stop


@pytest.mark.slow
def test_a_grammar_holds_the_answer_to_what_it_allows(served: ServerGenerator):
    text = "".join(
        served.generate(prompt="Is the sky blue? Answer:", max_tokens=8, grammar='root ::= " yes" | " no"')
    )
    assert text in (" yes", " no")


@pytest.mark.slow
def test_chat_messages_go_through_the_servers_chat_completions(served: ServerGenerator):
    pieces = list(served.generate(messages=[{"role": "user", "content": "Name a colour."}], max_tokens=6))
    assert all(isinstance(p, str) for p in pieces) and served.finish_reason in ("stop", "length")


@pytest.mark.slow
def test_cancel_mid_stream_stops_within_a_second_and_the_server_is_free_again(served: ServerGenerator):
    stream = served.generate(prompt=STORY, max_tokens=1000)
    first = next(stream)
    started = time.monotonic()
    threading.Thread(target=served.cancel).start()
    rest = list(stream)
    assert time.monotonic() - started < 1.0
    assert first and len(rest) < 20 and served.finish_reason == "cancelled"
    # the server stopped generating too: it is free for the next answer (not busy with 1,000 tokens)
    started = time.monotonic()
    assert list(served.generate(prompt="Hello", max_tokens=2))
    assert time.monotonic() - started < 10
    served.cancel()  # nothing under way: nothing happens
    assert list(served.generate(prompt="Hello", max_tokens=2)) and served.finish_reason == "length"


@pytest.mark.slow
def test_the_server_answers_as_the_in_process_model_does(served: ServerGenerator, local: Generator):
    """Same file, same sampling (temperature 0, top_k 1, repeat penalty 1.1), same batches: same text."""
    texts = ["one", "The tenant pays rent monthly.", "Notice QX7731 ends the lease on 3 May 2024."]
    assert served.count_tokens(texts) == local.count_tokens(texts)
    for prompt, stop in [(STORY, None), ("Count: one, two, three,", [" six"])]:
        there = "".join(served.generate(prompt=prompt, max_tokens=32, stop=stop))
        here = "".join(local.generate(prompt=prompt, max_tokens=32, stop=stop))
        assert there == here and served.finish_reason == local.finish_reason


@pytest.mark.slow
def test_a_server_that_stops_or_refuses_the_key_gives_a_clear_error(llm_server_model: Path, tmp_path: Path):
    server = start_llama_server(llm_server_model, tmp_path / "server.log", api_key="team-secret")
    try:
        with pytest.raises(ServerRefused, match="refused the API key"):
            ServerGenerator(server.url, api_key="wrong").warm_up()
        model = ServerGenerator(server.url, api_key="team-secret")
        model.warm_up()
        stream = model.generate(prompt=STORY, max_tokens=1000)
        assert next(stream)
        server.proc.kill()
        with pytest.raises(ServerUnreachable, match=f"{server.url}.*(stopped|closed|does not answer)"):
            list(stream)
        server.proc.wait()
        started = time.monotonic()
        with pytest.raises(ServerUnreachable, match=f"{server.url} does not answer.*start it"):
            model.count_tokens(["one"])
        assert time.monotonic() - started < 5
    finally:
        server.stop()


def test_no_server_at_the_address_is_a_clear_error_at_once():
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ServerUnreachable, match=f"{url} does not answer \\(connection refused\\)") as caught:
        ServerGenerator(url).warm_up()
    assert isinstance(caught.value, SealroomError) and time.monotonic() - started < 3
    with pytest.raises(ServerUnreachable):
        list(ServerGenerator(url).generate(prompt="x"))


def test_another_machine_is_refused_unless_the_policy_allows_it():
    with pytest.raises(ServerRefused, match=r"'10\.9\.8\.7' is not in the IT policy's allowed_hosts"):
        ServerGenerator("http://10.9.8.7:8000").warm_up()
    with pytest.raises(ServerRefused, match=r"'llm\.example\.org' is not in"):
        list(ServerGenerator("https://llm.example.org/v1").generate(prompt="x"))
    with pytest.raises(ModelError, match="not an http"):
        ServerGenerator("ftp://127.0.0.1/")


def test_the_socket_guard_lets_a_loopback_server_through_and_refuses_others():
    """With the offline guard on (as in the app): loopback connects; another host is refused by the guard
    too when it slips past the policy check (here: one the policy lists, but the guard was not told)."""
    code = (
        "import socket\n"
        "from sealroom.core.runtime import offline\n"
        "offline.enforce()\n"
        "from sealroom.models.remote_llm import ServerGenerator, ServerRefused, ServerUnreachable\n"
        "listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen()\n"
        "port = listener.getsockname()[1]; listener.close()\n"
        "try:\n"
        "    ServerGenerator(f'http://127.0.0.1:{port}').warm_up()\n"
        "except ServerUnreachable as e:\n"
        "    print('loopback reached:', 'connection refused' in str(e))\n"
        "model = ServerGenerator('http://10.9.8.7:8000', allowed_hosts=['10.9.8.7'])\n"
        "model._check_host = lambda: None\n"
        "try:\n"
        "    model.warm_up()\n"
        "except ServerRefused as e:\n"
        "    print('guard:', 'works offline' in str(e))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[:2] == ["loopback reached: True", "guard: True"], out.stderr
