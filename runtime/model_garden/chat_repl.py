"""The terminal chat loop shared by `model-garden inference-chat` and `kubectl mg chat`.

It knows nothing of where answers come from: it is given `send(messages)`, an async function that
streams the answer's text pieces. It keeps the history, streams answers as they come, and follows
one rule for piped input: with stdin not a terminal, the whole input is one message, the answer is
printed and the loop ends. Interactive commands: /clear, /image PATH_OR_URL, /help; `exit`, `quit`
or Ctrl+D end the session; Ctrl+C stops the current answer and keeps the session.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TextIO

from model_garden.image_refs import ImageRefError, image_ref_to_url

SendFunction = Callable[[list[dict[str, Any]]], AsyncIterator[str]]

HELP = """Commands:
  /clear              forget the conversation (the system prompt stays)
  /history            show the conversation so far
  /image PATH_OR_URL  attach an image to your next message
  /help               this help
  exit, quit, Ctrl+D  end the session
  Ctrl+C              stop the current answer"""

PROMPT = "you> "


class ChatRepl:
    def __init__(
        self,
        send: SendFunction,
        *,
        loop: asyncio.AbstractEventLoop,
        system_prompt: str | None = None,
        images: Sequence[str] = (),
        max_image_bytes: int | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self._send = send
        self._loop = loop
        self._system_prompt = system_prompt
        self._max_image_bytes = max_image_bytes
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self.history: list[dict[str, Any]] = []
        self._pending_images: list[str] = [self._image_url(ref) for ref in images]
        self.clear()

    def _image_url(self, ref: str) -> str:
        kwargs = {} if self._max_image_bytes is None else {"max_bytes": self._max_image_bytes}
        return image_ref_to_url(ref, **kwargs)

    def clear(self) -> None:
        self.history = [{"role": "system", "content": self._system_prompt}] if self._system_prompt else []

    def _user_message(self, text: str) -> dict[str, Any]:
        if not self._pending_images:
            return {"role": "user", "content": text}
        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": url}} for url in self._pending_images
        ]
        content.append({"type": "text", "text": text})
        self._pending_images = []
        return {"role": "user", "content": content}

    # --- one turn -------------------------------------------------------------------------

    def ask(self, text: str) -> str | None:
        """Send `text` with the history; stream the answer. None when interrupted by Ctrl+C."""
        message = self._user_message(text)
        messages = [*self.history, message]
        task = self._loop.create_task(self._stream(messages))
        interrupted = False

        def interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            task.cancel()

        self._loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            answer = self._loop.run_until_complete(task)
        except asyncio.CancelledError:
            answer = None
        except Exception as error:  # noqa: BLE001 - one line for the person, the session goes on
            self._out.write("\n")
            self._err.write(f"error: {error}\n")
            self._err.flush()
            return None
        finally:
            self._loop.remove_signal_handler(signal.SIGINT)
        if interrupted or answer is None:
            self._out.write("\n[answer interrupted]\n")
            self._out.flush()
            return None
        self.history = [*messages, {"role": "assistant", "content": answer}]
        return answer

    async def _stream(self, messages: list[dict[str, Any]]) -> str:
        pieces: list[str] = []
        async for piece in self._send(messages):
            pieces.append(piece)
            self._out.write(piece)
            self._out.flush()
        self._out.write("\n")
        self._out.flush()
        return "".join(pieces)

    # --- the loops ------------------------------------------------------------------------

    def run(self, stdin: TextIO | None = None) -> int:
        stdin = stdin or sys.stdin
        if not stdin.isatty():
            return self.run_once(stdin.read())
        return self.run_interactive()

    def run_once(self, text: str) -> int:
        if not text.strip():
            self._err.write("error: no input on stdin\n")
            return 2
        return 0 if self.ask(text.strip()) is not None else 130

    def run_interactive(self) -> int:
        self._err.write("Type a message; /help for commands, exit or Ctrl+D to quit.\n")
        while True:
            try:
                line = input(PROMPT)
            except EOFError:
                self._out.write("\n")
                return 0
            except KeyboardInterrupt:
                self._out.write("\n")
                continue
            text = line.strip()
            if not text:
                continue
            if text in ("exit", "quit"):
                return 0
            if text.startswith("/"):
                self._command(text)
                continue
            self.ask(text)

    def _command(self, text: str) -> None:
        name, _, argument = text.partition(" ")
        if name == "/clear":
            self.clear()
            self._err.write("[history cleared]\n")
        elif name == "/history":
            for message in self.history:
                self._err.write(f"[{message['role']}] {_text_of(message['content'])}\n")
            if not self.history:
                self._err.write("[no messages yet]\n")
        elif name == "/help":
            self._err.write(HELP + "\n")
        elif name == "/image" and argument.strip():
            try:
                self._pending_images.append(self._image_url(argument.strip()))
            except ImageRefError as error:
                self._err.write(f"error: {error}\n")
            else:
                self._err.write(f"[image attached to your next message: {argument.strip()}]\n")
        else:
            self._err.write(f"unknown command {text!r}; /help lists them\n")


def _text_of(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    parts = [part.get("text", "") if part.get("type") == "text" else "<image>" for part in content]
    return " ".join(parts)
