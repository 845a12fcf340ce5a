"""The pure builders: InferenceModel + operator configuration -> Deployment and Service.

Every manifest rendered here also passes kubernetes-validate (strict) for Kubernetes 1.30 and the
newest version it bundles. Golden files: UPDATE_GOLDEN=1 pytest tests/unit/test_builders.py
"""

from __future__ import annotations

import copy
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from model_garden_common import constants as c
from model_garden_common.settings import (
    API_KEY_FILE_OPTION,
    DISABLE_MANAGEMENT_OPTION,
    DRAIN_TIMEOUT_OPTION,
    HOST_OPTION,
    MODEL_PATH_OPTION,
    PORT_OPTION,
    QUANTIZATION_METHODS,
    SERVE_MODEL_COMMAND,
    parse_engine_args,
)
from model_garden_operator.builders import (
    build_deployment,
    build_network_policy,
    build_service,
    common_labels,
    endpoint_url,
    selector_labels,
    selector_string,
    spec_hash,
)
from model_garden_operator.builders_pod import API_KEYS_PATH
from model_garden_operator.spec import InvalidSpecError, parse_model
from tests.unit.factories import make_config, make_model

GOLDEN = Path(__file__).parent / "golden"
VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
CONFIG = make_config()


def assert_valid(*manifests: dict[str, Any]) -> None:
    for manifest in manifests:
        for version in VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)


def render(model: dict[str, Any], config: Any = CONFIG) -> tuple[dict[str, Any], dict[str, Any]]:
    deployment, service = build_deployment(model, config), build_service(model, config)
    assert_valid(deployment, service)
    return deployment, service


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod(deployment)["containers"]
    return only


def engine_args(args: list[str]) -> list[str]:
    """The vLLM flags between serve-model's own options and `--`."""
    start = args.index(DISABLE_MANAGEMENT_OPTION) + 1
    end = args.index("--") if "--" in args else len(args)
    return args[start:end]


# --- Container args ---------------------------------------------------------------------------------
def test_command_and_args() -> None:
    deployment, _ = render(make_model(maxModelLen=4096))
    runtime = container(deployment)
    assert runtime["name"] == "runtime"
    assert runtime["command"] == list(SERVE_MODEL_COMMAND)
    engine = parse_model(make_model(maxModelLen=4096)).engine
    assert runtime["args"] == [
        MODEL_PATH_OPTION,
        "meta-llama/Llama-3.1-8B-Instruct",
        DRAIN_TIMEOUT_OPTION,
        str(c.DRAIN_TIMEOUT_SECONDS),
        HOST_OPTION,
        "0.0.0.0",
        PORT_OPTION,
        "8000",
        DISABLE_MANAGEMENT_OPTION,
        *engine.to_args(),
    ]
    assert API_KEY_FILE_OPTION not in runtime["args"]
    assert parse_engine_args(engine_args(runtime["args"])) == (engine, [])


def test_served_model_name_is_always_passed() -> None:
    args = container(render(make_model("mistral"))[0])["args"]
    assert args[args.index("--served-model-name") + 1] == "mistral"
    args = container(render(make_model("mistral", servedModelName="mistral-7b"))[0])["args"]
    assert args[args.index("--served-model-name") + 1] == "mistral-7b"


def test_extra_args_follow_a_double_dash() -> None:
    extra = ["--max-num-batched-tokens", "8192", "--enable-prefix-caching"]
    args = container(render(make_model(extraArgs=extra))[0])["args"]
    assert args[-4:] == ["--", *extra]
    assert "--" not in container(render(make_model())[0])["args"]


@pytest.mark.parametrize("extra_args", [["--tensor_parallel_size=2"], ["-tp", "2"], ["--model", "x"]])
def test_colliding_extra_args_raise(extra_args: list[str]) -> None:
    with pytest.raises(InvalidSpecError, match=r"spec\.extraArgs"):
        build_deployment(make_model(extraArgs=extra_args), CONFIG)


# --- GPUs and resources -------------------------------------------------------------------------------
@pytest.mark.parametrize("tp", [1, 4, 8])
def test_tensor_parallel_size_sets_gpus_and_flag(tp: int) -> None:
    deployment, _ = render(make_model(tensorParallelSize=tp))
    runtime = container(deployment)
    gpus = {"nvidia.com/gpu": str(tp)}
    assert runtime["resources"] == {"limits": gpus, "requests": gpus}
    args = runtime["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == str(tp)
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}


@pytest.mark.parametrize("method", QUANTIZATION_METHODS)
def test_each_quantization_method_becomes_the_flag(method: str) -> None:
    args = container(render(make_model(quantization=method))[0])["args"]
    assert args[args.index("--quantization") + 1] == method


def test_gpu_resource_name_from_config_and_from_spec() -> None:
    config = make_config(gpu_resource_name="amd.com/gpu")
    assert set(container(render(make_model(), config)[0])["resources"]["limits"]) == {"amd.com/gpu"}
    spec_wins = container(render(make_model(gpuResourceName="gpu.intel.com/i915"), config)[0])
    assert spec_wins["resources"]["limits"] == {"gpu.intel.com/i915": "1"}


def test_explicit_resources_replace_the_computed_ones() -> None:
    resources = {
        "limits": {"nvidia.com/gpu": "2", "memory": "80Gi"},
        "requests": {"cpu": "8", "memory": "64Gi"},
    }
    deployment, _ = render(make_model(tensorParallelSize=4, resources=resources))
    assert container(deployment)["resources"] == resources


def test_cpu_only() -> None:
    config = make_config(gpu_image="gpu:1", cpu_image="cpu:1")
    deployment, _ = render(make_model(accelerator="cpu"), config)
    runtime = container(deployment)
    assert runtime["image"] == "cpu:1"
    assert "resources" not in runtime
    assert "nvidia.com/gpu" not in json.dumps(deployment)
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_cpu_with_explicit_resources() -> None:
    resources = {"requests": {"cpu": "2", "memory": "8Gi"}}
    runtime = container(render(make_model(accelerator="cpu", resources=resources))[0])
    assert runtime["resources"] == resources


def test_image_from_config_and_from_spec() -> None:
    config = make_config(gpu_image="gpu:1", cpu_image="cpu:1")
    assert container(render(make_model(), config)[0])["image"] == "gpu:1"
    assert container(render(make_model(image="mine:2"), config)[0])["image"] == "mine:2"
    assert container(render(make_model(accelerator="cpu", image="mine:2"), config)[0])["image"] == "mine:2"


# --- Volumes, env, token ------------------------------------------------------------------------------
def volume(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in pod(deployment)["volumes"] if v["name"] == name)


CACHES: dict[str, tuple[dict[str, Any] | None, dict[str, Any]]] = {
    "default": (None, {"emptyDir": {}}),
    "empty-dir": ({"emptyDir": {}}, {"emptyDir": {}}),
    "empty-dir-limit": ({"emptyDir": {"sizeLimit": "50Gi"}}, {"emptyDir": {"sizeLimit": "50Gi"}}),
    "empty-dir-int-limit": ({"emptyDir": {"sizeLimit": 1000}}, {"emptyDir": {"sizeLimit": "1000"}}),
    "pvc": (
        {"persistentVolumeClaim": {"claimName": "models"}},
        {"persistentVolumeClaim": {"claimName": "models"}},
    ),
}


@pytest.mark.parametrize(("cache", "expected"), CACHES.values(), ids=CACHES.keys())
def test_cache_volume(cache: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    deployment, _ = render(make_model(cache=cache))
    assert volume(deployment, "model-cache") == {"name": "model-cache", **expected}
    runtime = container(deployment)
    assert {"name": "model-cache", "mountPath": c.MODEL_CACHE_DIR} in runtime["volumeMounts"]
    assert {"name": "HF_HOME", "value": c.MODEL_CACHE_DIR} in runtime["env"]


def test_shared_memory_is_memory_backed() -> None:
    deployment, _ = render(make_model())
    assert volume(deployment, "dshm") == {"name": "dshm", "emptyDir": {"medium": "Memory"}}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container(deployment)["volumeMounts"]


@pytest.mark.parametrize(
    ("secret", "key"), [({"name": "hf"}, "HF_TOKEN"), ({"name": "hf", "key": "token"}, "token")]
)
def test_token_secret_becomes_hf_token(secret: dict[str, str], key: str) -> None:
    env = container(render(make_model(huggingFaceTokenSecret=secret))[0])["env"]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": key}}} in env


def test_no_token_without_the_secret() -> None:
    env = container(render(make_model())[0])["env"]
    assert [var["name"] for var in env] == ["HF_HOME"]


def test_env_ours_sorted_first_then_the_users_in_their_order() -> None:
    user_env = [
        {"name": "ZED", "value": "1"},
        {"name": "ALPHA", "value": "$(ZED)-2"},
        {"name": "MIDDLE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    env_from = [{"configMapRef": {"name": "vllm-env"}}]
    model = make_model(env=user_env, envFrom=env_from, huggingFaceTokenSecret={"name": "hf"})
    runtime = container(render(model)[0])
    assert [var["name"] for var in runtime["env"]] == ["HF_HOME", "HF_TOKEN", "ZED", "ALPHA", "MIDDLE"]
    assert runtime["env"][2:] == user_env
    assert runtime["envFrom"] == env_from


def test_image_pull_secrets_from_config() -> None:
    deployment, _ = render(make_model(), make_config(image_pull_secrets=("regcred", "other")))
    assert pod(deployment)["imagePullSecrets"] == [{"name": "regcred"}, {"name": "other"}]
    assert "imagePullSecrets" not in pod(render(make_model())[0])


# --- Scheduling ---------------------------------------------------------------------------------------
SCHEDULING: dict[str, Any] = {
    "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {c.LABEL_INSTANCE: "llama"}},
                    },
                }
            ]
        }
    },
    "priorityClassName": "inference-high",
    "runtimeClassName": "nvidia",
}


@pytest.mark.parametrize("field", SCHEDULING)
def test_scheduling_fields_pass_through(field: str) -> None:
    deployment, _ = render(make_model(**{field: SCHEDULING[field]}))
    assert pod(deployment)[field] == SCHEDULING[field]


def test_no_scheduling_fields_by_default() -> None:
    assert not set(SCHEDULING) & set(pod(render(make_model())[0]))


# --- Probes, drain, security --------------------------------------------------------------------------
def test_probes() -> None:
    runtime = container(render(make_model())[0])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert runtime[probe]["httpGet"]["port"] == "http"
    assert runtime["startupProbe"]["httpGet"]["path"] == c.HEALTH_PATH
    assert runtime["readinessProbe"]["httpGet"]["path"] == c.HEALTH_PATH
    assert runtime["livenessProbe"]["httpGet"]["path"] == c.LIVENESS_PATH
    startup = runtime["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30 * 60  # a model may load for long
    assert runtime["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_drain() -> None:
    deployment, _ = render(make_model())
    runtime = container(deployment)
    prestop = runtime["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert prestop == c.PRESTOP_SLEEP_SECONDS
    args = runtime["args"]
    drain = float(args[args.index(DRAIN_TIMEOUT_OPTION) + 1])
    assert drain == c.DRAIN_TIMEOUT_SECONDS > 0
    # The grace period counts from the preStop hook: the pause, then the runtime's drain after
    # SIGTERM, then a margin for the engine to stop, all before the kubelet's SIGKILL.
    grace = pod(deployment)["terminationGracePeriodSeconds"]
    assert grace == c.TERMINATION_GRACE_PERIOD_SECONDS
    assert grace - prestop - drain >= 10
    # The drain is a serve-model option, never passed on to vLLM.
    assert "--" not in args[: args.index(DRAIN_TIMEOUT_OPTION)]
    assert engine_args(args) == parse_model(make_model()).engine.to_args()


# --- API keys ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("secret", "key"), [({"name": "llama-keys"}, "api-keys"), ({"name": "llama-keys", "key": "k"}, "k")]
)
def test_api_key_secret_is_mounted_and_passed(secret: dict[str, str], key: str) -> None:
    deployment, _ = render(make_model(apiKeySecret=secret))
    runtime = container(deployment)
    args = runtime["args"]
    path = args[args.index(API_KEY_FILE_OPTION) + 1]
    assert engine_args(args) == parse_model(make_model()).engine.to_args()  # not a vLLM flag
    keys = volume(deployment, "api-keys")
    assert keys == {
        "name": "api-keys",
        "secret": {"secretName": "llama-keys", "items": [{"key": key, "path": "keys"}], "defaultMode": 0o440},
    }
    (mount,) = [m for m in runtime["volumeMounts"] if m["name"] == "api-keys"]
    assert mount["readOnly"] is True
    assert "subPath" not in mount
    assert path == f"{mount['mountPath']}/{keys['secret']['items'][0]['path']}"
    # Probes stay on the routes the runtime leaves open without a key.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert runtime[probe]["httpGet"]["path"] in (c.HEALTH_PATH, c.LIVENESS_PATH)
    # The keys never travel in the pod spec itself.
    assert "MODEL_GARDEN_API_KEYS" not in json.dumps(deployment)


def test_no_api_keys_without_the_secret() -> None:
    deployment, _ = render(make_model())
    assert API_KEY_FILE_OPTION not in container(deployment)["args"]
    assert [v["name"] for v in pod(deployment)["volumes"]] == ["model-cache", "dshm"]


def test_api_key_secret_changes_the_pods() -> None:
    def template_hash(model: dict[str, Any]) -> str:
        return build_deployment(model, CONFIG)["spec"]["template"]["metadata"]["annotations"][
            c.ANNOTATION_SPEC_HASH
        ]

    assert template_hash(make_model()) != template_hash(make_model(apiKeySecret={"name": "k"}))


def test_the_runtime_cli_reads_what_the_builders_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `model-garden serve-model` parses the container's args: the drain, the mounted key file
    # (here a local copy of it) and management off reach the server; nothing is left for vLLM.
    from click.testing import CliRunner

    from model_garden import cli

    calls: dict[str, Any] = {}
    server = types.ModuleType("model_garden.server")

    def run_server(**kwargs: Any) -> int:
        calls.update(kwargs)
        return 0

    server.Preload = lambda *args: args  # type: ignore[attr-defined]
    server.run_server = run_server  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "model_garden.server", server)
    monkeypatch.delenv("MODEL_GARDEN_API_KEYS", raising=False)
    keys = tmp_path / "keys"
    keys.write_text("# team a\nsk-one\nsk-two\n")
    args = container(render(make_model(apiKeySecret={"name": "k"}))[0])["args"]
    args = [str(keys) if arg == API_KEYS_PATH else arg for arg in args]

    result = CliRunner().invoke(cli.main, ["serve-model", *args])
    assert result.exit_code == 0, result.output
    assert calls["drain_timeout"] == c.DRAIN_TIMEOUT_SECONDS
    assert calls["api_keys"].current() == (b"sk-one", b"sk-two")
    assert calls["enable_management_routes"] is False
    model_path, settings, vllm_args = calls["preload"]
    assert (model_path, settings, vllm_args) == (
        "meta-llama/Llama-3.1-8B-Instruct",
        parse_model(make_model()).engine,
        (),
    )


def test_management_routes_stay_off_with_api_keys() -> None:
    args = container(render(make_model(apiKeySecret={"name": "k"}))[0])["args"]
    assert DISABLE_MANAGEMENT_OPTION in args
    assert "--admin-api-key-file" not in args


# --- NetworkPolicy --------------------------------------------------------------------------------
def network_policy(model: dict[str, Any], config: Any = CONFIG) -> dict[str, Any]:
    policy = build_network_policy(model, config)
    assert_valid(policy)
    return policy


def test_network_policy_selects_the_runtime_pods() -> None:
    deployment, service = render(make_model("qwen", namespace="team-a"))
    policy = network_policy(make_model("qwen", namespace="team-a"))
    assert policy["apiVersion"] == "networking.k8s.io/v1" and policy["kind"] == "NetworkPolicy"
    assert (policy["metadata"]["name"], policy["metadata"]["namespace"]) == ("qwen", "team-a")
    assert policy["metadata"]["labels"] == common_labels("qwen")
    assert policy["spec"]["podSelector"] == deployment["spec"]["selector"]
    assert policy["spec"]["podSelector"]["matchLabels"] == service["spec"]["selector"]
    # The pods it selects: the template's labels match the selector.
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert len(policy["metadata"]["annotations"][c.ANNOTATION_SPEC_HASH]) == 16
    assert "ownerReferences" not in policy["metadata"]  # the reconciler adopts


def test_network_policy_ingress_is_the_runtime_port_only() -> None:
    deployment, _ = render(make_model())
    spec = network_policy(make_model())["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = spec["ingress"]
    assert "from" not in rule  # any source: the Service, in-cluster clients, Prometheus
    assert rule["ports"] == [{"protocol": "TCP", "port": c.RUNTIME_PORT}]
    assert container(deployment)["ports"] == [
        {"name": c.RUNTIME_PORT_NAME, "containerPort": c.RUNTIME_PORT, "protocol": "TCP"}
    ]


def test_network_policy_egress_is_open_but_for_the_metadata_address() -> None:
    spec = network_policy(make_model())["spec"]
    in_cluster, outside = spec["egress"]
    assert in_cluster == {"to": [{"namespaceSelector": {}}]}  # every pod: DNS, in-cluster stores
    assert "ports" not in in_cluster and "ports" not in outside
    blocks = {peer["ipBlock"]["cidr"]: peer["ipBlock"]["except"] for peer in outside["to"]}
    assert blocks == {"0.0.0.0/0": ["169.254.169.254/32"], "::/0": ["fd00:ec2::254/128"]}


def test_network_policy_is_deterministic() -> None:
    model = make_model(replicas=3, maxModelLen=1024)
    assert json.dumps(build_network_policy(model, CONFIG)) == json.dumps(
        build_network_policy(copy.deepcopy(model), CONFIG)
    )
    # It depends only on the name and namespace: a spec change writes nothing to it.
    assert build_network_policy(model, CONFIG)["spec"] == build_network_policy(make_model(), CONFIG)["spec"]


def test_restricted_pod_security() -> None:
    deployment, _ = render(make_model())
    pod_security = pod(deployment)["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == c.RUNTIME_UID != 0
    assert pod_security["runAsGroup"] == pod_security["fsGroup"] == c.RUNTIME_GID
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(deployment)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # Restricted allows only these volume types (no hostPath).
    for vol in pod(deployment)["volumes"]:
        assert set(vol) - {"name"} <= {"emptyDir", "persistentVolumeClaim"}
    assert pod(deployment)["automountServiceAccountToken"] is False


# --- Labels, annotations, Service -----------------------------------------------------------------------
def test_labels_and_annotations() -> None:
    deployment, service = render(make_model("qwen", model="Qwen/Qwen2.5-7B-Instruct"))
    labels = {
        "app.kubernetes.io/name": "model-garden",
        "app.kubernetes.io/instance": "qwen",
        "app.kubernetes.io/managed-by": "model-garden-operator",
        "app.kubernetes.io/component": "runtime",
    }
    assert common_labels("qwen") == labels
    template = deployment["spec"]["template"]
    for metadata in (deployment["metadata"], template["metadata"], service["metadata"]):
        assert metadata["labels"] == labels
        assert metadata["annotations"][c.ANNOTATION_MODEL] == "Qwen/Qwen2.5-7B-Instruct"
        assert len(metadata["annotations"][c.ANNOTATION_SPEC_HASH]) == 16
    assert deployment["spec"]["selector"] == {"matchLabels": selector_labels("qwen")}
    assert selector_labels("qwen").items() <= labels.items()
    assert service["spec"]["selector"] == selector_labels("qwen")
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "8000"
    assert template["metadata"]["annotations"]["prometheus.io/path"] == c.METRICS_PATH
    assert selector_string("qwen") == (
        "app.kubernetes.io/component=runtime,app.kubernetes.io/instance=qwen,app.kubernetes.io/name=model-garden"
    )
    for obj in (deployment, service):
        assert obj["metadata"]["name"] == "qwen" and obj["metadata"]["namespace"] == "default"
        assert "ownerReferences" not in obj["metadata"]  # the reconciler adopts


@pytest.mark.parametrize("replicas", [0, 1, 3])
def test_replicas(replicas: int) -> None:
    assert render(make_model(replicas=replicas))[0]["spec"]["replicas"] == replicas


@pytest.mark.parametrize(
    ("service_spec", "type_", "port"),
    [
        (None, "ClusterIP", 80),
        ({"type": "NodePort"}, "NodePort", 80),
        ({"type": "LoadBalancer", "port": 8080}, "LoadBalancer", 8080),
    ],
)
def test_service(service_spec: dict[str, Any] | None, type_: str, port: int) -> None:
    _, service = render(make_model(service=service_spec))
    assert service["spec"]["type"] == type_
    assert service["spec"]["ports"] == [
        {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}
    ]


@pytest.mark.parametrize(
    ("service_spec", "domain", "url"),
    [
        (None, "cluster.local", "http://llama.team-a.svc.cluster.local/v1"),
        ({"port": 8080}, "cluster.local", "http://llama.team-a.svc.cluster.local:8080/v1"),
        (None, "k8s.example", "http://llama.team-a.svc.k8s.example/v1"),
    ],
)
def test_endpoint_url(service_spec: dict[str, Any] | None, domain: str, url: str) -> None:
    model = make_model(namespace="team-a", service=service_spec)
    assert endpoint_url(model, make_config(cluster_domain=domain)) == url


def test_endpoint_url_needs_a_namespace() -> None:
    with pytest.raises(InvalidSpecError, match=r"metadata\.namespace"):
        endpoint_url(make_model(namespace=None), CONFIG)


# --- Determinism and hashes ---------------------------------------------------------------------------
def dump(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


def test_same_input_same_bytes() -> None:
    model = make_model(
        tensorParallelSize=2, extraArgs=["--enable-prefix-caching"], env=[{"name": "A", "value": "1"}]
    )
    first, second = render(model), render(copy.deepcopy(model))
    assert [dump(obj) for obj in first] == [dump(obj) for obj in second]
    assert json.dumps(first) == json.dumps(second)


def test_builders_do_not_mutate_their_input() -> None:
    model = make_model(env=[{"name": "A", "value": "1"}], tolerations=SCHEDULING["tolerations"])
    before = copy.deepcopy(model)
    deployment, _ = render(model)
    container(deployment)["env"][-1]["value"] = "changed"
    pod(deployment)["tolerations"][0]["key"] = "changed"
    assert model == before
    assert render(model)[0] != deployment


def test_spec_hash_ignores_key_order() -> None:
    assert spec_hash({"a": 1, "b": {"c": 2, "d": 3}}) == spec_hash({"b": {"d": 3, "c": 2}, "a": 1})


def test_hashes_follow_what_changed() -> None:
    def hashes(model: dict[str, Any]) -> tuple[str, str]:
        deployment = build_deployment(model, CONFIG)
        return (
            deployment["metadata"]["annotations"][c.ANNOTATION_SPEC_HASH],
            deployment["spec"]["template"]["metadata"]["annotations"][c.ANNOTATION_SPEC_HASH],
        )

    base = hashes(make_model())
    scaled = hashes(make_model(replicas=3))
    assert scaled[0] != base[0] and scaled[1] == base[1]  # scaling does not roll the pods
    changed = hashes(make_model(maxModelLen=1024))
    assert changed[0] != base[0] and changed[1] != base[1]


def test_parsed_model_is_accepted_too() -> None:
    raw = make_model(tensorParallelSize=2)
    assert build_deployment(parse_model(raw), CONFIG) == build_deployment(raw, CONFIG)


# --- Golden renderings ----------------------------------------------------------------------------------
GOLDEN_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "gpu-tp1": (make_model("llama"), {}),
    "gpu-tp4-awq": (
        make_model(
            "llama-70b",
            namespace="inference",
            model="casperhansen/llama-3-70b-instruct-awq",
            servedModelName="llama-3-70b",
            replicas=2,
            tensorParallelSize=4,
            quantization="awq",
            maxModelLen=8192,
            gpuMemoryUtilization=0.92,
            extraArgs=["--enable-prefix-caching"],
            cache={"emptyDir": {"sizeLimit": "200Gi"}},
            nodeSelector={"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
            tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            service={"type": "LoadBalancer", "port": 8080},
        ),
        {"image_pull_secrets": ("regcred",)},
    ),
    "cpu-pvc-token": (
        make_model(
            "tiny",
            namespace="dev",
            model="Qwen/Qwen2.5-0.5B-Instruct",
            accelerator="cpu",
            dtype="float32",
            enforceEager=True,
            maxModelLen=2048,
            resources={"requests": {"cpu": "2", "memory": "6Gi"}, "limits": {"memory": "8Gi"}},
            env=[{"name": "VLLM_CPU_KVCACHE_SPACE", "value": "2"}],
            huggingFaceTokenSecret={"name": "hf-token", "key": "token"},
            apiKeySecret={"name": "tiny-api-keys"},
            cache={"persistentVolumeClaim": {"claimName": "model-cache"}},
        ),
        {},
    ),
}


@pytest.mark.parametrize(("model", "config"), GOLDEN_CASES.values(), ids=GOLDEN_CASES.keys())
def test_golden(model: dict[str, Any], config: dict[str, Any], request: pytest.FixtureRequest) -> None:
    config_ = make_config(**config)
    text = yaml.safe_dump_all([*render(model, config_), network_policy(model, config_)], sort_keys=False)
    path = GOLDEN / f"{request.node.callspec.id}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.read_text() == text, "what the operator writes changed: review, then UPDATE_GOLDEN=1"
