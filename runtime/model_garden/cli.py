"""`model-garden`: serve a model, generate or chat from the terminal, make a demo model.

Engine options are generated from the settings table (settings.ENGINE_FLAGS), so every command
spells them exactly as vLLM does. Click rather than Typer: Typer derives options from a function's
signature, and ours come from a table.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from model_garden.auth import ENV_ADMIN_API_KEYS, ENV_API_KEYS
from model_garden.vision.cli_options import vision_from_options, vision_options
from model_garden_common.constants import DRAIN_TIMEOUT_SECONDS, METRICS_PATH, RUNTIME_PORT
from model_garden_common.limits import LIMIT_FLAGS, RequestLimits
from model_garden_common.options import model_from_options, table_options
from model_garden_common.settings import (
    API_KEY_FILE_OPTION,
    DISABLE_MANAGEMENT_OPTION,
    DRAIN_TIMEOUT_OPTION,
    DTYPES,
    ENGINE_FLAGS,
    HOST_OPTION,
    MODEL_PATH_OPTION,
    PORT_OPTION,
    QUANTIZATION_METHODS,
    EngineSettings,
    find_managed_flag_collisions,
)

engine_options = table_options(
    EngineSettings,
    ENGINE_FLAGS,
    choices={"quantization": QUANTIZATION_METHODS, "dtype": DTYPES},
    metavars={"quantization": "METHOD"},
)
limits_options = table_options(RequestLimits, LIMIT_FLAGS)


def settings_from_options(options: dict[str, Any]) -> EngineSettings:
    return model_from_options(EngineSettings, ENGINE_FLAGS, options)


def _check_extra_args(extra: tuple[str, ...]) -> None:
    if collisions := find_managed_flag_collisions(extra):
        raise click.UsageError(
            f"flags after '--' may not set {', '.join(collisions)}: use the matching option instead"
        )


def _server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options of the HTTP server (not the engine); `_server_kwargs` turns them into run_server's."""
    options = [
        click.option(HOST_OPTION, "host", default="0.0.0.0", show_default=True),
        click.option(PORT_OPTION, "port", type=int, default=RUNTIME_PORT, show_default=True),
        click.option(
            DISABLE_MANAGEMENT_OPTION,
            "disable_management",
            is_flag=True,
            help="Turn off POST /api/v1/inference/load and /unload (status and generate stay on).",
        ),
        click.option(
            DRAIN_TIMEOUT_OPTION,
            "drain_timeout",
            type=click.FloatRange(min=0),
            default=DRAIN_TIMEOUT_SECONDS,
            show_default=True,
            help="On SIGTERM, how long in-flight requests (streams too) may take to finish "
            "before the engine stops, in seconds.",
        ),
        click.option(
            "--api-key",
            "api_key_values",
            multiple=True,
            help=f"Require this API key (repeatable; also ${ENV_API_KEYS}, comma-separated). "
            "Prefer --api-key-file: command lines are visible to other local users.",
        ),
        click.option(
            API_KEY_FILE_OPTION,
            "api_key_files",
            multiple=True,
            type=click.Path(dir_okay=False),
            help="A file of API keys, one per line (repeatable); re-read when it changes, so keys "
            "rotate without a restart.",
        ),
        click.option(
            "--admin-api-key-file",
            "admin_api_key_files",
            multiple=True,
            type=click.Path(dir_okay=False),
            help=f"Keys for load/unload only (repeatable; also ${ENV_ADMIN_API_KEYS}).",
        ),
        click.option(
            "--protect-metrics",
            is_flag=True,
            help="Require an API key for /metrics too (/health and /livez always stay open).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return limits_options(command)


def _server_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """run_server's keyword arguments from the options `_server_options` added (popped)."""
    from model_garden.auth import DEFAULT_OPEN_PATHS, KeyFileError, KeyRing, read_keys

    try:
        # Flag and environment keys are fixed; key files are re-read when they change (rotation).
        fixed = read_keys(options.pop("api_key_values"), env_var=ENV_API_KEYS)
        api_keys = KeyRing(fixed, options.pop("api_key_files"))
        admin_keys = KeyRing(read_keys(env_var=ENV_ADMIN_API_KEYS), options.pop("admin_api_key_files"))
    except KeyFileError as error:
        raise click.UsageError(str(error)) from None
    protect_metrics = options.pop("protect_metrics")
    return {
        "host": options.pop("host"),
        "port": options.pop("port"),
        "enable_management_routes": not options.pop("disable_management"),
        "drain_timeout": options.pop("drain_timeout"),
        "api_keys": api_keys,
        "admin_api_keys": admin_keys,
        "open_paths": tuple(p for p in DEFAULT_OPEN_PATHS if not (protect_metrics and p == METRICS_PATH)),
        "limits": model_from_options(RequestLimits, LIMIT_FLAGS, options),
    }


model_path_option = click.option(
    MODEL_PATH_OPTION, "model_path", required=True, help="Hugging Face model id or local directory."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="model-garden")
def main() -> None:
    """Model Garden runtime: vLLM behind an OpenAI-compatible API."""


@main.command("serve-model", context_settings={"ignore_unknown_options": False})
@model_path_option
@_server_options
@vision_options
@engine_options
@click.argument("vllm_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- VLLM_FLAGS...]")
def serve_model(model_path: str, vllm_args: tuple[str, ...], **options: Any) -> None:
    """Serve one model. Further vLLM engine flags go after `--`."""
    from model_garden.server import Preload, run_server

    server = _server_kwargs(options)
    vision = vision_from_options(options)
    settings = settings_from_options(options)
    _check_extra_args(vllm_args)
    sys.exit(run_server(preload=Preload(model_path, settings, vllm_args), vision=vision, **server))


@main.command("serve")
@_server_options
@vision_options
def serve(**options: Any) -> None:
    """Serve with no model; load one with POST /api/v1/inference/load."""
    from model_garden.server import run_server

    server = _server_kwargs(options)
    sys.exit(run_server(vision=vision_from_options(options), **server))


def _sampling_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--top-p", type=float, default=0.9, show_default=True)(command)
    command = click.option("--temperature", type=float, default=0.7, show_default=True)(command)
    command = click.option("--max-tokens", type=int, default=256, show_default=True)(command)
    return command


@main.command("inference-generate")
@model_path_option
@click.option("--prompt", required=True, help="The text to complete.")
@click.option("--image", "images", multiple=True, help="Image file, http(s) URL or data URL (repeatable).")
@_sampling_options
@click.option("--stream/--no-stream", default=True, show_default=True, help="Print tokens as they come.")
@click.option("--verbose", is_flag=True, help="Show vLLM's own logs.")
@vision_options
@engine_options
def inference_generate(
    model_path: str,
    prompt: str,
    images: tuple[str, ...],
    max_tokens: int,
    temperature: float,
    top_p: float,
    stream: bool,
    verbose: bool,
    **options: Any,
) -> None:
    """Load a model in this process and complete one prompt."""
    from model_garden.terminal import run_generate

    vision = vision_from_options(options)
    settings = settings_from_options(options)
    sys.exit(
        run_generate(
            model_path,
            settings,
            prompt,
            list(images),
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stream=stream,
            verbose=verbose,
            vision=vision,
        )
    )


@main.command("inference-chat")
@model_path_option
@click.option("--system-prompt", default=None, help="A system message that starts the conversation.")
@click.option(
    "--image", "images", multiple=True, help="Image file, http(s) URL or data URL for the first message."
)
@_sampling_options
@click.option("--verbose", is_flag=True, help="Show vLLM's own logs.")
@vision_options
@engine_options
def inference_chat(
    model_path: str,
    system_prompt: str | None,
    images: tuple[str, ...],
    max_tokens: int,
    temperature: float,
    top_p: float,
    verbose: bool,
    **options: Any,
) -> None:
    """Chat with a model loaded in this process. `exit`, `quit` or Ctrl+D end it.

    With stdin piped, the whole input is one message: the answer is printed and the command exits.
    """
    from model_garden.terminal import run_chat

    vision = vision_from_options(options)
    settings = settings_from_options(options)
    sys.exit(
        run_chat(
            model_path,
            settings,
            system_prompt,
            list(images),
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            verbose=verbose,
            vision=vision,
        )
    )


@main.command("create-demo-model")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--vision", is_flag=True, help="A tiny vision-language model (Idefics3) that takes images.")
def create_demo_model_command(directory: str, vision: bool) -> None:
    """Write a tiny random-weight chat model to DIRECTORY (a smoke-test model: it answers gibberish).

    For trying the server where weights cannot be downloaded. Real users pass a Hugging Face id or a
    local model directory to serve-model.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if vision:
        from model_garden.demo_vision_model import create_demo_vision_model as create_demo_model
    else:
        from model_garden.demo_model import create_demo_model

    path = create_demo_model(directory)
    click.echo(f"Smoke-test model written to {path} (random weights: its answers are gibberish).")


if __name__ == "__main__":
    main()
