"""`kubectl mg list / status / deploy / delete` as processes against the emulated cluster, and the
errors a person hits, each one line with no traceback."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
import yaml

from model_garden_common import constants as C
from tests.emulator.cluster import EVENTS, IM, PODS, Cluster, pod_status
from tests.plugin.emulator_proxy import ProxyingEmulator
from tests.plugin.helpers import NS, model_status, one_line_error, put_model, run_mg
from tests.unit.factories import make_model

pytestmark = pytest.mark.timeout(120)


def rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.strip().splitlines()]


# --- list ----------------------------------------------------------------------------------------
async def test_list_shows_the_columns_a_person_wants(cluster: Cluster, mg_env: dict[str, str]) -> None:
    put_model(cluster, "demo")
    put_model(
        cluster,
        "qwen",
        model="Qwen/Qwen2.5-7B-Instruct-AWQ",
        accelerator="gpu",
        tensor_parallel_size=2,
        quantization="awq",
        phase="Pending",
        reason="WaitingForGPUs",
        message="pod qwen-1: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    )
    result = await run_mg(mg_env, "list")
    assert result.code == 0, result.stderr
    header, demo, qwen = rows(result.stdout)
    assert header == ["NAME", "MODEL", "TP", "QUANTIZATION", "READY", "PHASE", "ENDPOINT", "AGE"]
    assert demo[:7] == [
        "demo",
        "/models/demo",
        "1",
        "-",
        "1/1",
        "Ready",
        "http://demo.default.svc.cluster.local/v1",
    ]
    assert qwen[:6] == ["qwen", "Qwen/Qwen2.5-7B-Instruct-AWQ", "2", "awq", "0/1", "Pending"]
    assert demo[7].endswith("s")  # age: seconds

    wide = await run_mg(mg_env, "list", "-o", "wide")
    assert rows(wide.stdout)[0][-3:] == ["SERVED-NAME", "ACCELERATOR", "REASON"]
    assert rows(wide.stdout)[2][-3:] == ["qwen", "gpu", "WaitingForGPUs"]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
async def test_list_output_formats(cluster: Cluster, mg_env: dict[str, str], fmt: str) -> None:
    put_model(cluster, "demo")
    result = await run_mg(mg_env, "list", "-o", fmt)
    assert result.code == 0, result.stderr
    listed = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
    assert listed["kind"] == "List"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["demo"]
    assert listed["items"][0]["status"]["phase"] == "Ready"


async def test_namespaces_all_namespaces_and_the_context_default(
    cluster: Cluster, mg_env: dict[str, str], tmp_path: Path
) -> None:
    await cluster.create_namespace("team")
    put_model(cluster, "demo")
    cluster.emu.do_create(IM, "team", make_model("other", namespace="team"))

    default = await run_mg(mg_env, "list")
    assert [r[0] for r in rows(default.stdout)[1:]] == ["demo"]
    # -n before or after the command, as kubectl users type it.
    for args in (["list", "-n", "team"], ["-n", "team", "list"], ["list", "--namespace=team"]):
        team = await run_mg(mg_env, *args)
        assert [r[0] for r in rows(team.stdout)[1:]] == ["other"], (args, team.stderr)
    everywhere = await run_mg(mg_env, "list", "-A")
    assert [r[:2] for r in rows(everywhere.stdout)[1:]] == [["default", "demo"], ["team", "other"]]
    # The context's namespace is the default when -n is not given.
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["contexts"][0]["context"]["namespace"] = "team"
    team_config = tmp_path / "team-kubeconfig"
    team_config.write_text(yaml.safe_dump(config))
    via_context = await run_mg(mg_env, "list", "--kubeconfig", str(team_config))
    assert [r[0] for r in rows(via_context.stdout)[1:]] == ["other"]
    empty = await run_mg(mg_env, "list", "-n", "kube-system")
    assert empty.code == 0 and "No InferenceModels found in kube-system namespace" in empty.stderr


# --- status --------------------------------------------------------------------------------------
async def test_status_shows_conditions_pods_events_and_what_to_do(
    cluster: Cluster, mg_env: dict[str, str]
) -> None:
    message = 'pod demo-pod-0 cannot pull its image: Back-off pulling image "bad:tag"'
    put_model(cluster, "demo", phase="Failed", reason="ImagePullBackOff", message=message, image="bad:tag")
    labels = {C.LABEL_NAME: C.APP_NAME, C.LABEL_INSTANCE: "demo", C.LABEL_COMPONENT: C.COMPONENT_RUNTIME}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "demo-pod-0", "labels": labels}}
    cluster.emu.do_create(PODS, NS, pod)
    cluster.emu.do_create(PODS, NS, {**pod, "metadata": {"name": "unrelated", "labels": {"app": "x"}}})
    cluster.emu.write_status(PODS, NS, "demo-pod-0", pod_status("image-pull"))
    await cluster.create(
        EVENTS,
        _event("demo-pod-0", "Pod", "Failed", 'Failed to pull image "bad:tag": not found', "Warning"),
    )
    await cluster.create(EVENTS, _event("demo", "InferenceModel", "ImagePullBackOff", message, "Warning"))
    await cluster.create(EVENTS, _event("unrelated", "Pod", "Pulled", "should not show", "Normal"))

    result = await run_mg(mg_env, "status", "demo")
    assert result.code == 0, result.stderr
    out = " ".join(result.stdout.split())  # whitespace-insensitive
    for expected in ("Name:", "demo", "Phase:", "Failed", "0/1 ready (desired 1)", "Conditions:"):
        assert expected in out
    assert "Degraded True ImagePullBackOff" in out
    assert "demo-pod-0 0/1 ImagePullBackOff" in out
    assert "Failed to pull image" in out and "pod/demo-pod-0" in out and "inferencemodel/demo" in out
    assert "unrelated" not in out and "should not show" not in out
    assert "What to do: the runtime image cannot be pulled" in out

    as_yaml = await run_mg(mg_env, "status", "demo", "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout)["status"]["phase"] == "Failed"


async def test_status_without_rights_on_events_still_reports(
    cluster: Cluster, emu: ProxyingEmulator, mg_env: dict[str, str]
) -> None:
    put_model(cluster, "demo")
    emu.deny("list", "events")
    result = await run_mg(mg_env, "status", "demo")
    assert result.code == 0, result.stderr
    assert "(not allowed to list events)" in result.stdout
    assert "Chat with it: kubectl mg chat demo -n default" in result.stdout
    assert all(line == line.rstrip() for line in result.stdout.splitlines())  # no padding at line ends


# --- deploy and delete ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["yaml", "json"])
async def test_deploy_dry_run_prints_the_manifest_and_sends_nothing(
    cluster: Cluster, mg_env: dict[str, str], fmt: str
) -> None:
    since = len(cluster.emu.log)
    result = await run_mg(
        mg_env,
        "deploy",
        "qwen",
        "--model",
        "Qwen/Qwen2.5-7B-Instruct-AWQ",
        "--tensor-parallel-size",
        "2",
        "--quantization",
        "awq",
        "--gpu-memory-utilization",
        "0.85",
        "--max-model-len",
        "8192",
        "--replicas",
        "2",
        "--served-model-name",
        "qwen-chat",
        "--image",
        "registry.example/runtime:1",
        "--dry-run",
        "-o",
        fmt,
    )
    assert result.code == 0, result.stderr
    manifest = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
    assert manifest == {
        "apiVersion": "modelgarden.io/v1alpha1",
        "kind": "InferenceModel",
        "metadata": {"name": "qwen", "namespace": "default"},
        "spec": {
            "model": "Qwen/Qwen2.5-7B-Instruct-AWQ",
            "tensorParallelSize": 2,
            "quantization": "awq",
            "gpuMemoryUtilization": 0.85,
            "maxModelLen": 8192,
            "replicas": 2,
            "servedModelName": "qwen-chat",
            "image": "registry.example/runtime:1",
        },
    }
    assert cluster.emu.writes(since) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--gpu-memory-utilization", "1.5"], "error: invalid --gpu-memory-utilization 1.5: "),
        (["--cpu", "--tensor-parallel-size", "2"], "must be 1 with accelerator cpu"),
        (["--quantization", "squeezellm"], "error: invalid --quantization squeezellm: "),
        (["--replicas", "-1"], "error: invalid --replicas -1: "),
    ],
)
async def test_deploy_bad_values_are_one_line(
    cluster: Cluster, mg_env: dict[str, str], args: list[str], expected: str
) -> None:
    since = len(cluster.emu.log)
    result = await run_mg(mg_env, "deploy", "demo", "--model", "m", *args)
    assert result.code == 2
    assert expected in one_line_error(result)
    assert cluster.emu.writes(since) == []


async def test_deploy_creates_then_refuses_a_duplicate_and_delete_removes(
    cluster: Cluster, mg_env: dict[str, str]
) -> None:
    created = await run_mg(mg_env, "deploy", "demo", "--model", "/models/demo", "--cpu")
    assert created.code == 0, created.stderr
    assert created.stdout.strip() == "inferencemodel.modelgarden.io/demo created"
    obj = cluster.model(NS, "demo")
    assert obj is not None and obj["spec"]["accelerator"] == "cpu"
    again = await run_mg(mg_env, "deploy", "demo", "--model", "/models/demo", "--cpu")
    assert 'InferenceModel "demo" already exists in namespace "default"' in one_line_error(again)

    deleted = await run_mg(mg_env, "delete", "demo")
    assert deleted.code == 0 and deleted.stdout.strip() == 'inferencemodel.modelgarden.io "demo" deleted'
    assert cluster.model(NS, "demo") is None
    gone = await run_mg(mg_env, "delete", "demo")
    assert 'InferenceModel "demo" not found in namespace "default"' in one_line_error(gone)


# --- errors a person hits ------------------------------------------------------------------------
async def test_model_not_found(cluster: Cluster, mg_env: dict[str, str]) -> None:
    for command in (["status", "nope"], ["chat", "nope"], ["generate", "nope", "--prompt", "hi"]):
        result = await run_mg(mg_env, *command, stdin="hello")
        line = one_line_error(result)
        assert 'InferenceModel "nope" not found in namespace "default"' in line, command
        assert "kubectl mg list -A" in line


async def test_no_cluster_reachable(tmp_path: Path, mg_env: dict[str, str]) -> None:
    closed = tmp_path / "closed-kubeconfig"
    config = yaml.safe_load(Path(mg_env["KUBECONFIG"]).read_text())
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"  # nothing listens on 9 (discard)
    closed.write_text(yaml.safe_dump(config))
    result = await run_mg({**mg_env, "KUBECONFIG": str(closed)}, "list")
    line = one_line_error(result)
    assert "cannot reach the Kubernetes API server at http://127.0.0.1:9" in line
    assert "connection refused" in line.lower()


async def test_no_kubeconfig(tmp_path: Path, mg_env: dict[str, str]) -> None:
    env = {**mg_env, "KUBECONFIG": str(tmp_path / "missing")}
    line = one_line_error(await run_mg(env, "list"))
    assert line.startswith("error: no kubeconfig found: set KUBECONFIG, pass --kubeconfig")
    unset = {k: v for k, v in env.items() if k != "KUBECONFIG"}  # and no ~/.kube/config in HOME
    assert one_line_error(await run_mg(unset, "status", "demo")) == line


async def test_rejected_credentials(cluster: Cluster, mg_env: dict[str, str], tmp_path: Path) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"][0]["user"]["token"] = "expired"
    stale = tmp_path / "stale"
    stale.write_text(yaml.safe_dump(config))
    line = one_line_error(await run_mg({**mg_env, "KUBECONFIG": str(stale)}, "list"))
    assert "rejected your credentials (401 Unauthorized)" in line


async def test_forbidden_says_which_verb_and_resource(
    cluster: Cluster, emu: ProxyingEmulator, mg_env: dict[str, str]
) -> None:
    put_model(cluster, "demo")
    emu.deny("list", "inferencemodels")
    emu.deny("create", "inferencemodels")
    listed = one_line_error(await run_mg(mg_env, "list"))
    assert 'may not list inferencemodels.modelgarden.io in namespace "default"' in listed
    deployed = one_line_error(await run_mg(mg_env, "deploy", "x", "--model", "m"))
    assert 'may not create inferencemodels.modelgarden.io in namespace "default"' in deployed


async def test_forbidden_chat_suggests_the_services_proxy_role(
    cluster: Cluster, emu: ProxyingEmulator, mg_env: dict[str, str]
) -> None:
    put_model(cluster, "demo", backend="http://127.0.0.1:9")
    emu.deny("create", "services/proxy")
    line = one_line_error(await run_mg(mg_env, "chat", "demo", stdin="hello"))
    assert 'may not create services/proxy in namespace "default"' in line
    assert "--clusterrole=model-garden-service-proxy --user=YOU -n default" in line
    assert emu.proxied == []


@pytest.mark.parametrize(
    ("phase", "reason", "expected"),
    [
        ("Loading", "ModelLoading", "model demo is not Ready: Loading (ModelLoading: "),
        ("Pending", "WaitingForGPUs", "model demo is not Ready: Pending (WaitingForGPUs: "),
        ("Failed", "CrashLoopBackOff", "model demo failed: CrashLoopBackOff: "),
        ("Stopped", "ScaledToZero", "model demo is stopped (replicas is 0): "),
    ],
)
async def test_chat_with_a_model_that_does_not_serve(
    cluster: Cluster, mg_env: dict[str, str], phase: str, reason: str, expected: str
) -> None:
    put_model(
        cluster, "demo", phase=phase, reason=reason, message="details here", backend="http://127.0.0.1:9"
    )
    line = one_line_error(await run_mg(mg_env, "chat", "demo", stdin="hello"))
    assert expected in line
    if phase in ("Loading", "Pending"):
        assert line.endswith("pass --wait to wait for it (kubectl mg status demo)")
    if phase == "Failed":
        assert "kubectl logs deploy/demo -n default --previous" in line


async def test_service_without_ready_pods(cluster: Cluster, mg_env: dict[str, str]) -> None:
    # Ready a moment ago, but no endpoint now: the API server's 503, explained.
    put_model(cluster, "demo")
    line = one_line_error(await run_mg(mg_env, "chat", "demo", stdin="hello"))
    assert "model demo has no pod ready to answer (no endpoints available for service" in line


async def test_model_without_its_service(cluster: Cluster, mg_env: dict[str, str]) -> None:
    cluster.emu.do_create(IM, NS, make_model("demo"))
    cluster.emu.write_status(IM, NS, "demo", model_status("Ready", "ReplicasReady", "1/1 replicas ready"))
    line = one_line_error(await run_mg(mg_env, "chat", "demo", stdin="hello"))
    assert line.startswith(
        'error: Service "demo" not found in namespace "default": the operator has not created'
    )


async def test_image_file_missing_or_too_large(
    cluster: Cluster, mg_env: dict[str, str], tmp_path: Path
) -> None:
    put_model(cluster, "demo")
    missing = one_line_error(await run_mg(mg_env, "chat", "demo", "--image", str(tmp_path / "no.png")))
    assert missing == f"error: image file not found: {tmp_path / 'no.png'}"
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * C.DEFAULT_MAX_IMAGE_BYTES)
    too_large = one_line_error(await run_mg(mg_env, "chat", "demo", "--image", str(big)))
    assert f"the limit is {C.DEFAULT_MAX_IMAGE_BYTES:,} bytes" in too_large


def _event(obj: str, kind: str, reason: str, message: str, etype: str) -> dict[str, object]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{obj}.{reason.lower()}", "namespace": NS},
        "involvedObject": {"kind": kind, "name": obj, "namespace": NS},
        "reason": reason,
        "message": message,
        "type": etype,
        "lastTimestamp": now,
    }


async def test_images_are_held_to_the_models_own_limit_before_any_wait(
    cluster: Cluster, mg_env: dict[str, str], tmp_path: Path
) -> None:
    # A Loading model whose spec.vision.maxImageBytes is 1,000: the too large file is the error, at
    # once, not "not Ready" (and not after a wait with --wait).
    put_model(
        cluster,
        "demo",
        phase="Loading",
        reason="ModelLoading",
        message="loading",
        vision={"maxImageBytes": 1000},
    )
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 1500)
    for wait in ((), ("--wait", "--timeout", "60s")):
        line = one_line_error(
            await run_mg(mg_env, "chat", "demo", *wait, "--image", str(picture), timeout=20)
        )
        assert line == f"error: image file {picture} is 1,508 bytes; the limit is 1,000 bytes"
