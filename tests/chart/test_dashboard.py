"""The Grafana dashboard (charts/model-garden/dashboards/model-garden.json): its PromQL names only
metrics the runtime's /metrics serves.

Two checks: a fast one against the metrics our modules declare and the `vllm:*` names in the
installed vLLM's metrics source (no engine), and a slow one against the text a running runtime
serves on /metrics.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chart.render import CHART

DASHBOARD = json.loads((CHART / "dashboards" / "model-garden.json").read_text())

# Metrics the issue asks the dashboard to show (one panel or more each).
REQUIRED = {
    "model_garden_requests_total",
    "model_garden_requests_in_flight",
    "model_garden_request_duration_seconds_bucket",
    "model_garden_time_to_first_byte_seconds_bucket",
    "model_garden_requests_aborted_total",
    "model_garden_auth_failures_total",
    "model_garden_image_refusals_total",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
}


# --- PromQL -> metric names ------------------------------------------------------------------------
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"})
_LABEL_VALUES = re.compile(r"^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, labels or keywords)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":
            continue  # the exponent of a number (1e3)
        if text[match.end() :].lstrip().startswith("(") or match.group() in _KEYWORDS:
            continue  # a function or aggregation, or an operator
        names.add(match.group())
    return names


def test_metric_names_parser() -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{x=~"$y", z="{b}"}[$__rate_interval])))'
    ) == {"a_bucket"}
    assert metric_names("sum(rate(vllm:x_total[5m])) / sum without (pod) (b) > bool 1e3") == {
        "vllm:x_total",
        "b",
    }


def panels(items: Iterable[dict[str, Any]] = DASHBOARD["panels"]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_metrics() -> set[str]:
    names: set[str] = set()
    for panel in panels():
        for target in panel.get("targets", []):
            names |= metric_names(target["expr"])
    for variable in DASHBOARD["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES.match(variable["definition"])
            assert match, variable["definition"]
            names.add(match.group(1))
    return names


# --- What /metrics serves ----------------------------------------------------------------------------
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def sample_names(name: str, kind: str) -> set[str]:
    """The sample names of a metric family (a counter `x` is sampled as `x_total`)."""
    return {name + suffix for suffix in _SUFFIXES.get(kind, ("",))}


def declared_metrics() -> set[str]:
    """Ours (HTTP, images) from the default registry the runtime serves, and vLLM's from its source."""
    from prometheus_client import REGISTRY

    # Imported, they register their metrics in the default registry, as in the runtime.
    import model_garden.observability
    import model_garden.vision.metrics  # noqa: F401

    names = {
        sample
        for family in REGISTRY.collect()
        if family.name.startswith("model_garden_")
        for sample in sample_names(family.name, family.type)
    }
    spec = importlib.util.find_spec("vllm")
    assert spec is not None and spec.origin is not None, "vLLM is not installed"
    source = (Path(spec.origin).parent / "v1" / "metrics" / "loggers.py").read_text()
    declared = re.findall(r"self\._(gauge|counter|histogram)_cls\(\s*name=\"(vllm:[^\"]+)\"", source)
    assert len(declared) > 20, "vLLM's metrics moved: update this test"
    for kind, name in declared:
        names |= sample_names(name, kind)
    return names


def served_metrics(text: str) -> set[str]:
    """Sample names of every family in a /metrics text, whether it has samples yet or not."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        sample
        for family in text_string_to_metric_families(text)
        for sample in sample_names(family.name, family.type)
    }


# --- The dashboard -------------------------------------------------------------------------------------
def test_dashboard_covers_the_required_metrics() -> None:
    assert dashboard_metrics() >= REQUIRED


def test_dashboard_metrics_are_declared() -> None:
    names = dashboard_metrics()
    assert all(name.startswith(("model_garden_", "vllm:")) for name in names), names
    assert names - declared_metrics() == set()


def test_dashboard_is_well_formed() -> None:
    assert DASHBOARD["uid"] == "model-garden" and DASHBOARD["title"]
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))
    occupied: set[tuple[int, int]] = set()
    for panel in panels():
        grid = panel["gridPos"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert grid["x"] + grid["w"] <= 24 and not cells & occupied, panel["title"]
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}" and panel["description"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            # Every query filters on the dashboard's namespace and model variables.
            assert "$namespace" in target["expr"] and "$model" in target["expr"], target["expr"]


# --- docs/metrics.md ------------------------------------------------------------------------------------
METRICS_DOC = (CHART.parents[1] / "docs" / "metrics.md").read_text()


def doc_queries() -> list[str]:
    return re.findall(r"```promql\n(.*?)```", METRICS_DOC, re.DOTALL)


def test_metrics_doc_lists_every_metric_of_ours() -> None:
    from prometheus_client import REGISTRY

    import model_garden.observability
    import model_garden.vision.metrics  # noqa: F401

    ours = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in REGISTRY.collect()
        if family.name.startswith("model_garden_")
    }
    assert len(ours) >= 9
    assert [name for name in sorted(ours) if f"`{name}`" not in METRICS_DOC] == []


def test_metrics_doc_queries_name_declared_metrics() -> None:
    queries = doc_queries()
    assert queries
    names = set().union(*(metric_names(re.sub(r"#.*", "", query)) for query in queries))
    assert names and names - declared_metrics() == set()
    for name in dashboard_metrics():
        assert f"`{re.sub(r'_bucket$', '', name)}`" in METRICS_DOC, name


@pytest.mark.slow
def test_dashboard_metrics_are_on_a_running_runtimes_metrics_page(runtime_server: Any) -> None:
    url = runtime_server.url
    # One chat completion and one unknown route, so labelled series exist (the families exist anyway).
    answer = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    served = served_metrics(httpx.get(f"{url}/metrics", timeout=30).text)
    assert {"model_garden_requests_total", "vllm:num_requests_running"} <= served
    assert dashboard_metrics() - served == set()
