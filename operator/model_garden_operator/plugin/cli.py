"""`kubectl mg`: the kubectl plugin's commands (console script `kubectl-mg`).

kubectl finds `kubectl-mg` on PATH and runs it for `kubectl mg ...`. The connection options
(-n/--namespace, --context, --kubeconfig) are accepted before or after the command name, as
kubectl users type them. Every expected failure is one line on stderr (`error: ...`) and a
non-zero exit status: 1 for failures, 2 for usage mistakes, 130 for Ctrl+C.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from model_garden_operator.plugin.errors import Forbidden, PluginError
from model_garden_operator.plugin.proxy import API_KEY_ENV

if TYPE_CHECKING:
    from model_garden_operator.plugin.api import KubeApi

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")


class Duration(click.ParamType):
    """kubectl-style durations: 90, 90s, 10m, 1h30m."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        found = _DURATION.match(str(value).strip())
        if not str(value).strip() or found is None:
            self.fail(f"{value!r} is not a duration (e.g. 90s, 10m, 1h30m)", param, ctx)
        hours, minutes, seconds = found.groups()
        return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


# --- connection options, before or after the command ---------------------------------------------
def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None and param.name:
        ctx.meta[f"mg.{param.name}"] = value


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "-n", "--namespace", expose_value=False, callback=_remember,
            help="Namespace [default: the context's, else default].",
        ),
        click.option("--context", expose_value=False, callback=_remember, help="kubeconfig context to use."),
        click.option(
            "--kubeconfig", expose_value=False, callback=_remember,
            help="kubeconfig file [default: $KUBECONFIG, else ~/.kube/config].",
        ),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


class Session:
    """The cluster connection, made on first use (a --url chat never needs one)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self._meta = meta
        self._api: KubeApi | None = None

    def api(self) -> KubeApi:
        if self._api is None:
            from model_garden_operator.plugin.api import KubeApi
            from model_garden_operator.plugin.kubeconfig import connect

            conn = connect(
                kubeconfig=self._meta.get("mg.kubeconfig"),
                context=self._meta.get("mg.context"),
                namespace=self._meta.get("mg.namespace"),
            )
            self._api = KubeApi(conn)
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


def _session() -> Session:
    ctx = click.get_current_context()
    session = ctx.meta.get("mg.session")
    if session is None:
        session = ctx.meta["mg.session"] = Session(ctx.meta)
        ctx.call_on_close(session.close)
    return session  # type: ignore[no-any-return]


def _out() -> Console:
    # Off a terminal (a pipe, a file) tables keep their full width instead of wrapping at 80.
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=100_000)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


# --- commands --------------------------------------------------------------------------------------
@click.group(context_settings=CONTEXT_SETTINGS)
@connection_options
@click.version_option(package_name="model-garden", prog_name="kubectl mg")
def cli() -> None:
    """Chat with, deploy and inspect Model Garden InferenceModels.

    \b
    kubectl mg deploy qwen --model Qwen/Qwen2.5-0.5B-Instruct --wait
    kubectl mg list
    kubectl mg chat qwen
    kubectl mg status qwen
    kubectl mg delete qwen
    """


def _reach_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--url", help="Talk to this endpoint (e.g. http://host:8000) instead of through the cluster."
        ),
        click.option(
            "--api-key", envvar=API_KEY_ENV, show_envvar=True,
            help="API key for the runtime: sent as X-API-Key (and with --url as Authorization: Bearer).",
        ),
        click.option("--wait", is_flag=True, help="If the model is not Ready yet, wait for it."),
        click.option(
            "--timeout", type=Duration(), default="30m", show_default=True, help="How long --wait waits."
        ),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("name", required=False)
@connection_options
@_reach_options
@click.option("--system-prompt", help="A system message that starts the conversation.")
@click.option("--temperature", type=float, help="Sampling temperature [default: the model's].")
@click.option("--max-tokens", type=int, help="Longest answer in tokens [default: up to the context].")
@click.option("--top-p", type=float, help="Nucleus sampling [default: the model's].")
@click.option(
    "--image", "images", multiple=True, metavar="PATH_OR_URL",
    help="Attach an image to the first message (repeatable; local files are sent as data URLs).",
)  # fmt: skip
def chat(
    name: str | None,
    url: str | None,
    api_key: str | None,
    wait: bool,
    timeout: float,
    system_prompt: str | None,
    temperature: float | None,
    max_tokens: int | None,
    top_p: float | None,
    images: tuple[str, ...],
) -> int:
    """Chat with the InferenceModel NAME: answers stream as they are written.

    \b
    In the session: /image PATH_OR_URL attaches an image to your next message, /history shows the
    conversation, /clear forgets it, /help lists commands; exit, quit or Ctrl+D end it; Ctrl+C
    stops an answer. With stdin piped, the whole input is one message: the answer is printed and
    the command exits.
    """
    from model_garden_operator.plugin.chat import Reach, run_chat, sampling

    return run_chat(
        Reach(name, url, api_key, wait, timeout),
        _session().api,
        system_prompt=system_prompt,
        images=images,
        params=sampling(temperature=temperature, max_tokens=max_tokens, top_p=top_p),
        console=_err(),
    )


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("name", required=False)
@connection_options
@_reach_options
@click.option("--prompt", help="The text to complete [default: read from stdin].")
@click.option("--stream/--no-stream", default=False, show_default=True, help="Print the text as it comes.")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, help="[default: the model's]")
@click.option("--top-p", type=float, help="[default: the model's]")
def generate(
    name: str | None,
    url: str | None,
    api_key: str | None,
    wait: bool,
    timeout: float,
    prompt: str | None,
    stream: bool,
    max_tokens: int,
    temperature: float | None,
    top_p: float | None,
) -> int:
    """Complete one prompt with the InferenceModel NAME (OpenAI /v1/completions)."""
    from model_garden_operator.plugin.chat import Reach, run_generate, sampling

    if prompt is None:
        if sys.stdin.isatty():
            raise click.UsageError("give --prompt, or pipe the prompt on stdin")
        prompt = sys.stdin.read()
    return run_generate(
        Reach(name, url, api_key, wait, timeout),
        _session().api,
        prompt=prompt,
        stream=stream,
        params=sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p),
        console=_err(),
    )


@cli.command("list", context_settings=CONTEXT_SETTINGS)
@connection_options
@click.option("-A", "--all-namespaces", is_flag=True, help="Models in every namespace.")
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "wide"]), help="Output format.")
def list_models(all_namespaces: bool, output: str | None) -> int:
    """List InferenceModels: name, model, TP, quantization, ready/desired, phase, endpoint, age."""
    from model_garden_operator.plugin.render import as_list, dump, emit, models_table

    api = _session().api()
    namespace = None if all_namespaces else api.conn.namespace
    models = api.list_models(namespace)
    if output in ("json", "yaml"):
        click.echo(dump(as_list(models), output))
        return 0
    if not models:
        where = "any namespace" if all_namespaces else f"{namespace} namespace"
        _err().print(f"No InferenceModels found in {where}.")
        return 0
    emit(_out(), models_table(models, all_namespaces=all_namespaces, wide=output == "wide"))
    return 0


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@connection_options
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), help="Print the object instead.")
@click.option("--events", "event_count", type=int, default=10, show_default=True, help="Events to show.")
def status(name: str, output: str | None, event_count: int) -> int:
    """Conditions, replicas, pods and recent Events of NAME, and what to do about a failure."""
    from model_garden_operator.builders import selector_string
    from model_garden_operator.plugin.render import dump, print_status, related_events

    api = _session().api()
    namespace = api.conn.namespace
    obj = api.get_model(namespace, name)
    if output:
        click.echo(dump(obj, output))
        return 0
    pods = _optional(lambda: api.list_pods(namespace, selector_string(name)))
    events = _optional(lambda: api.list_events(namespace))
    pod_names = [p["metadata"]["name"] for p in pods or []]
    recent = None if events is None else related_events(events, name, pod_names, event_count)
    print_status(_out(), obj, pods, recent)
    return 0


def _optional(call: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
    """What `call` returns, or None when RBAC does not allow it (status shows what it can)."""
    try:
        return call()
    except Forbidden:
        return None


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@connection_options
@click.option("--model", "model", required=True, help="Hugging Face model id, or a path in the cache volume.")
@click.option("--tensor-parallel-size", type=int, help="GPUs per replica.")
@click.option("--quantization", help="Quantization method (e.g. awq, gptq, fp8).")
@click.option("--gpu-memory-utilization", type=float, help="Share of GPU memory vLLM may use (0-1].")
@click.option("--max-model-len", type=int, help="Context length.")
@click.option("--dtype", help="Model weights' dtype (auto, bfloat16, float16, ...).")
@click.option("--replicas", type=int, help="Runtime pods.")
@click.option("--cpu", is_flag=True, help="Run on CPU (the CPU runtime image, no GPUs).")
@click.option("--served-model-name", help="Name clients send as `model` [default: NAME].")
@click.option("--image", help="Runtime image [default: the operator's].")
@click.option(
    "--hf-token-secret", metavar="SECRET[:KEY]", help="Secret with a Hugging Face token (gated models)."
)
@click.option("--wait", is_flag=True, help="Wait until the model is Ready; fail if it fails.")
@click.option("--timeout", type=Duration(), default="30m", show_default=True, help="How long --wait waits.")
@click.option("--dry-run", is_flag=True, help="Print the InferenceModel; send nothing.")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), help="Print the object in this format.")
def deploy(name: str, wait: bool, timeout: float, dry_run: bool, output: str | None, **options: Any) -> int:
    """Deploy a model as the InferenceModel NAME, without writing YAML."""
    from model_garden_operator.plugin.deploy import build_manifest, check_manifest
    from model_garden_operator.plugin.kubeconfig import DEFAULT_NAMESPACE
    from model_garden_operator.plugin.models import format_seconds, wait_until_serving
    from model_garden_operator.plugin.render import dump, progress_display

    session = _session()
    obj = build_manifest(name, DEFAULT_NAMESPACE, **options)
    check_manifest(obj)  # a bad value is reported before anything else is looked at
    if dry_run:
        # Like kubectl's client-side dry run: no cluster needed (the namespace may come from -n,
        # else from the kubeconfig's context if there is one).
        obj["metadata"]["namespace"] = _namespace_or(session, DEFAULT_NAMESPACE)
        click.echo(dump(obj, output or "yaml"))
        return 0
    api = session.api()
    namespace = obj["metadata"]["namespace"] = api.conn.namespace
    started = time.monotonic()
    created = api.create_model(obj)
    if output:
        click.echo(dump(created, output))
    else:
        click.echo(f"inferencemodel.modelgarden.io/{name} created")
    if not wait:
        return 0
    err = _err()
    with progress_display(err, name) as progress:
        state = wait_until_serving(lambda: api.get_model(namespace, name), timeout=timeout, progress=progress)
    elapsed = format_seconds(time.monotonic() - started)
    err.print(f"{name} is Ready ({state.ready}) after {elapsed}: kubectl mg chat {name} -n {namespace}")
    return 0


def _namespace_or(session: Session, default: str) -> str:
    given = click.get_current_context().meta.get("mg.namespace")
    if given:
        return str(given)
    try:
        return str(session.api().conn.namespace)
    except PluginError:
        return default


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@connection_options
def delete(names: tuple[str, ...]) -> int:
    """Delete InferenceModels (their Deployment and Service go with them)."""
    api = _session().api()
    for name in names:
        api.delete_model(api.conn.namespace, name)
        click.echo(f'inferencemodel.modelgarden.io "{name}" deleted')
    return 0


# --- entry point -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    """Run a command; expected failures become one line on stderr and an exit status."""
    try:
        code = cli.main(args=argv, prog_name="kubectl mg", standalone_mode=False)
    except PluginError as error:
        click.echo(f"error: {error.message}", err=True)
        sys.exit(error.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(code if isinstance(code, int) else 0)
