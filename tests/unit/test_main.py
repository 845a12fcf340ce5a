"""main.py: flags reach Kopf (cluster-wide unless namespaces are named; the liveness endpoint)."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from model_garden_operator import handlers as handlers_module
from model_garden_operator import main as entry
from model_garden_operator.config import OperatorConfig


@pytest.fixture()
def kopf_run(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(kopf, "run", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setattr(entry, "configure_logging", lambda config: seen.update(config=config))
    for var in ("MODEL_GARDEN_WATCH_NAMESPACES", "MODEL_GARDEN_OPERATOR_HEALTH_PORT"):
        monkeypatch.delenv(var, raising=False)
    return seen


def test_cluster_wide_by_default(kopf_run: dict[str, Any]) -> None:
    assert entry.main([]) == 0
    assert kopf_run["clusterwide"] is True and tuple(kopf_run["namespaces"]) == ()
    assert kopf_run["liveness_endpoint"] == "http://0.0.0.0:8080/healthz"
    assert kopf_run["memo"]["config"] == OperatorConfig()
    assert kopf_run["standalone"] is True


def test_watch_namespaces_narrow_it(kopf_run: dict[str, Any]) -> None:
    entry.main(["--watch-namespaces", "a,b", "--health-port", "0"])
    assert kopf_run["clusterwide"] is False and tuple(kopf_run["namespaces"]) == ("a", "b")
    assert kopf_run["liveness_endpoint"] is None


def test_one_reconcile_serves_resume_create_and_update(kopf_run: dict[str, Any]) -> None:
    entry.main([])
    registry: kopf.OperatorRegistry = kopf_run["registry"]
    handlers = registry._changing.get_all_handlers()  # Kopf has no public listing
    # Resume handlers are the ones with `initial` set and no reason.
    causes = {"resume" if h.initial else str(h.reason.value) for h in handlers}
    assert causes == {"resume", "create", "update"}
    assert {h.fn for h in handlers} == {handlers_module.reconcile}
