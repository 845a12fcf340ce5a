"""The chat loop's rules, with a scripted `send` in place of a model."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from model_garden.chat_repl import ChatRepl
from tests.unit.test_image_refs import PNG_1x1


class ScriptedModel:
    """Answers "answer N" in two pieces and records every request."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []

    async def send(self, messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        self.requests.append(messages)
        yield "answer "
        yield str(len(self.requests))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def make_repl(loop: asyncio.AbstractEventLoop, **kwargs: Any) -> tuple[ChatRepl, ScriptedModel, io.StringIO]:
    model = ScriptedModel()
    out = io.StringIO()
    return ChatRepl(model.send, loop=loop, out=out, err=io.StringIO(), **kwargs), model, out


def test_history_carries_earlier_turns(loop: asyncio.AbstractEventLoop) -> None:
    repl, model, out = make_repl(loop, system_prompt="be brief")
    repl.ask("one")
    repl.ask("two")
    assert model.requests[1] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "two"},
    ]
    assert out.getvalue() == "answer 1\nanswer 2\n"


def test_clear_keeps_the_system_prompt(loop: asyncio.AbstractEventLoop) -> None:
    repl, model, _ = make_repl(loop, system_prompt="sys")
    repl.ask("one")
    repl.clear()
    repl.ask("two")
    assert model.requests[1] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "two"}]


def test_piped_input_is_one_message(loop: asyncio.AbstractEventLoop) -> None:
    repl, model, out = make_repl(loop)
    assert repl.run(io.StringIO("line one\nline two\n")) == 0
    assert model.requests == [[{"role": "user", "content": "line one\nline two"}]]
    assert out.getvalue() == "answer 1\n"


def test_empty_piped_input_is_an_error(loop: asyncio.AbstractEventLoop) -> None:
    repl, model, _ = make_repl(loop)
    assert repl.run(io.StringIO("  \n")) == 2
    assert model.requests == []


def test_images_go_with_the_first_message_only(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    image = tmp_path / "x.png"
    image.write_bytes(PNG_1x1)
    repl, model, _ = make_repl(loop, images=[str(image), "https://example.com/cat.png"])
    repl.ask("what is this?")
    repl.ask("and now?")
    first = model.requests[0][0]["content"]
    assert [part["type"] for part in first] == ["image_url", "image_url", "text"]
    assert first[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert model.requests[1][-1] == {"role": "user", "content": "and now?"}


def test_send_errors_are_one_line_and_the_session_goes_on(loop: asyncio.AbstractEventLoop) -> None:
    async def failing(messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        raise RuntimeError("model said no")
        yield ""  # pragma: no cover - makes this an async generator

    err = io.StringIO()
    repl = ChatRepl(failing, loop=loop, out=io.StringIO(), err=err)
    assert repl.ask("hi") is None
    assert err.getvalue() == "error: model said no\n"
    assert repl.history == []
