"""The real operator against the emulated API: each model's NetworkPolicy and its API-key Secret.

Same pattern as test_reconciler.py: drive the cluster as a person, wait on the emulator's state.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from model_garden_common import constants as C
from model_garden_common.settings import API_KEY_FILE_OPTION
from model_garden_operator import handlers
from model_garden_operator.builders import build_network_policy
from model_garden_operator.builders_pod import API_KEYS_PATH
from model_garden_operator.config import OperatorConfig
from tests.emulator.cluster import IM, NETWORK_POLICIES, SECRETS, Cluster
from tests.emulator.conftest import Operator, wait_for
from tests.emulator.test_reconciler import NS, container, created, operator_writes, settled
from tests.unit.factories import make_model

pytestmark = pytest.mark.timeout(60)


def policy_uid(cluster: Cluster, name: str) -> str | None:
    policy = cluster.network_policy(NS, name)
    return None if policy is None else policy["metadata"]["uid"]  # type: ignore[no-any-return]


# --- NetworkPolicy --------------------------------------------------------------------------------
async def test_policy_is_created_with_the_model_and_owned_by_it(cluster: Cluster, operator: Operator) -> None:
    model = await created(cluster, "llama")
    policy = await wait_for(lambda: cluster.network_policy(NS, "llama"), what="the NetworkPolicy")

    owner = policy["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (C.KIND, model["metadata"]["uid"], True)
    assert policy["metadata"]["labels"][C.LABEL_MANAGED_BY] == C.MANAGED_BY
    assert policy["spec"] == build_network_policy(make_model("llama"), operator.config)["spec"]
    dep = cluster.deployment(NS, "llama")
    assert dep is not None
    assert policy["spec"]["podSelector"] == dep["spec"]["selector"]
    # Written before the Deployment, so no pod of the model runs without it.
    posts = [e.path for e in cluster.emu.log if e.method == "POST"]
    assert posts.index(f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies") < posts.index(
        f"/apis/apps/v1/namespaces/{NS}/deployments"
    )
    # Watched by label only: the operator never lists the cluster's other policies.
    reads = [e for e in cluster.emu.log if e.method == "GET" and e.path.endswith("/networkpolicies")]
    assert reads and all(e.query.get("labelSelector") == handlers.MANAGED_SELECTOR for e in reads)
    await wait_for(lambda: cluster.events(NS, "llama"), what="an event")
    assert [e["message"] for e in cluster.events(NS, "llama")] == [
        "Created NetworkPolicy, Deployment and Service"
    ]


async def test_policy_deleted_by_hand_is_recreated(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "llama")
    old_uid = await wait_for(lambda: policy_uid(cluster, "llama"), what="the NetworkPolicy")
    await cluster.delete(NETWORK_POLICIES, NS, "llama")

    await wait_for(lambda: policy_uid(cluster, "llama") not in (None, old_uid), 5, "a new NetworkPolicy")


async def test_policy_edited_by_hand_is_restored(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "llama")
    desired = (await wait_for(lambda: cluster.network_policy(NS, "llama")))["spec"]
    # Someone opens every port and all egress.
    await cluster.patch(NETWORK_POLICIES, NS, "llama", {"spec": {"ingress": [{}], "egress": [{}]}})

    await wait_for(lambda: cluster.network_policy(NS, "llama")["spec"] == desired, 5, "the policy back")  # type: ignore[index]
    await wait_for(lambda: "Updated" in [e["reason"] for e in cluster.events(NS, "llama")], what="an event")


async def test_policy_goes_with_the_model(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "llama")
    await wait_for(lambda: cluster.network_policy(NS, "llama"))
    await cluster.delete(IM, NS, "llama")

    await wait_for(lambda: not cluster.emu.items(NETWORK_POLICIES), what="the policy to go")
    await settled(cluster)
    assert cluster.network_policy(NS, "llama") is None  # nothing recreated it


async def test_idle_resync_writes_nothing_with_policies(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "llama")
    await wait_for(lambda: cluster.network_policy(NS, "llama"))
    await settled(cluster)

    since = len(cluster.emu.log)
    await operator.restart()
    await wait_for(lambda: any(e.path.endswith("/networkpolicies/llama") for e in cluster.emu.log[since:]))
    await settled(cluster)
    assert operator_writes(cluster, since) == []


async def test_no_policy_when_turned_off(cluster: Cluster) -> None:
    off = Operator(OperatorConfig(network_policy=False))
    await off.start()
    try:
        await created(cluster, "llama")
        await settled(cluster)
        assert cluster.deployment(NS, "llama") is not None
        assert cluster.emu.items(NETWORK_POLICIES) == []
        assert not any("networkpolicies" in w for w in operator_writes(cluster, 0))
    finally:
        await off.stop()


async def test_turning_policies_off_deletes_none(cluster: Cluster, operator: Operator) -> None:
    await created(cluster, "llama")
    await wait_for(lambda: cluster.network_policy(NS, "llama"))
    await settled(cluster)
    await operator.stop()

    since = len(cluster.emu.log)
    off = Operator(OperatorConfig(network_policy=False))
    await off.start()
    try:
        await cluster.patch(IM, NS, "llama", {"spec": {"replicas": 2}})
        await wait_for(lambda: cluster.deployment(NS, "llama")["spec"]["replicas"] == 2)  # type: ignore[index]
        await settled(cluster)
        assert cluster.network_policy(NS, "llama") is not None
        assert not any("networkpolicies" in w for w in operator_writes(cluster, since))
    finally:
        await off.stop()


# --- API keys -------------------------------------------------------------------------------------
async def secret_with_data(cluster: Cluster, name: str, data: dict[str, str]) -> None:
    """A Secret as the API server stores it: base64 `data`."""
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS}}
    await cluster.create(SECRETS, {**obj, "data": encoded})


async def test_missing_api_key_secret_fails_until_it_appears(
    cluster: Cluster, operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "SECRET_RETRY_DELAY", 0.5)
    await cluster.create(IM, make_model("private", api_key_secret={"name": "private-keys"}))

    await wait_for(lambda: cluster.phase(NS, "private") == "Failed")
    degraded = cluster.condition(NS, "private", "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "MissingSecret")
    assert "spec.apiKeySecret" in degraded["message"] and "'private-keys' not found" in degraded["message"]
    assert cluster.deployment(NS, "private") is None

    await secret_with_data(cluster, "private-keys", {"api-keys": "# team a\nsk-one\nsk-two\n"})
    await wait_for(lambda: cluster.phase(NS, "private") == "Pending", 10)
    runtime = container(cluster, "private")
    assert runtime["args"][runtime["args"].index(API_KEY_FILE_OPTION) + 1] == API_KEYS_PATH
    dep = cluster.deployment(NS, "private")
    volumes = dep["spec"]["template"]["spec"]["volumes"]  # type: ignore[index]
    assert {
        "secretName": "private-keys",
        "items": [{"key": "api-keys", "path": "keys"}],
        "defaultMode": 0o440,
    } in [v.get("secret") for v in volumes]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"other": "sk-one"}, "has no key 'api-keys'"),
        ({"api-keys": ""}, "holds no API key"),
        ({"api-keys": "\n# only a comment\n   \n"}, "holds no API key"),
    ],
    ids=["wrong-key", "empty", "comments-only"],
)
async def test_api_key_secret_without_a_key_fails(
    cluster: Cluster, operator: Operator, data: dict[str, str], problem: str
) -> None:
    await secret_with_data(cluster, "keys", data)
    await cluster.create(IM, make_model("private", api_key_secret={"name": "keys"}))

    await wait_for(lambda: cluster.phase(NS, "private") == "Failed")
    message = cluster.condition(NS, "private", "Ready")["message"]
    assert message.startswith("spec.apiKeySecret:") and problem in message
    # Never the keys themselves in status or events.
    assert "sk-one" not in str(cluster.model(NS, "private")) + str(cluster.events(NS, "private"))
    assert cluster.deployment(NS, "private") is None
