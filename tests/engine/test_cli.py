"""The `model-garden` CLI end to end: real processes, a real pseudo-terminal for the chat."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pexpect
import pytest

from tests.support.runtime import BIN, TEST_ENGINE_ARGS, engine_env

pytestmark = pytest.mark.slow

CLI = str(BIN / "model-garden")


def test_create_demo_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [CLI, "create-demo-model", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=120,
        env=engine_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "smoke-test" in result.stdout.lower()
    assert (tmp_path / "m" / "config.json").is_file() and (tmp_path / "m" / "tokenizer.json").is_file()


def test_inference_generate_prints_only_the_answer(demo_model_dir: Path) -> None:
    result = subprocess.run(
        [
            CLI,
            "inference-generate",
            "--model-path",
            str(demo_model_dir),
            "--prompt",
            "Hello",
            "--max-tokens",
            "5",
            "--no-stream",
            *TEST_ENGINE_ARGS,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=engine_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.strip().splitlines()) <= 2, result.stdout
    assert "INFO" not in result.stdout and "Traceback" not in result.stderr
    assert "Loaded" in result.stderr


def test_bad_option_value_is_a_usage_error() -> None:
    result = subprocess.run(
        [CLI, "inference-generate", "--model-path", "x", "--prompt", "p", "--quantization", "squeezellm"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "squeezellm" in result.stderr and "Traceback" not in result.stderr


def test_missing_model_is_one_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            CLI,
            "inference-generate",
            "--model-path",
            str(tmp_path / "none"),
            "--prompt",
            "p",
            *TEST_ENGINE_ARGS,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=engine_env(),
    )
    assert result.returncode == 1
    assert "could not load" in result.stderr and "Traceback" not in result.stderr


def test_inference_chat_with_piped_stdin(demo_model_dir: Path) -> None:
    result = subprocess.run(
        [CLI, "inference-chat", "--model-path", str(demo_model_dir), "--max-tokens", "4", *TEST_ENGINE_ARGS],
        input="Hello there\nThis whole input is one message\n",
        capture_output=True,
        text=True,
        timeout=300,
        env=engine_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "the answer is printed"
    assert "you>" not in result.stdout


def test_inference_chat_in_a_terminal_keeps_history(demo_model_dir: Path) -> None:
    chat = pexpect.spawn(
        CLI,
        [
            "inference-chat",
            "--model-path",
            str(demo_model_dir),
            "--max-tokens",
            "4",
            "--system-prompt",
            "Be brief",
            *TEST_ENGINE_ARGS,
        ],
        env=engine_env(),
        encoding="utf-8",
        timeout=240,
        dimensions=(40, 200),
    )
    try:
        chat.expect_exact("you> ")
        chat.sendline("first question")
        chat.expect_exact("you> ", timeout=60)
        chat.sendline("second question")
        chat.expect_exact("you> ", timeout=60)
        chat.sendline("/history")
        chat.expect_exact("[system] Be brief")
        chat.expect_exact("[user] first question")
        chat.expect_exact("[assistant]")
        chat.expect_exact("[user] second question")
        chat.expect_exact("you> ")
        chat.sendline("/clear")
        chat.expect_exact("[history cleared]")
        chat.sendline("exit")
        chat.expect(pexpect.EOF, timeout=60)
    finally:
        chat.close()
    assert chat.exitstatus == 0
