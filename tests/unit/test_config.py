"""config.py: environment variables, then flags of `model-garden-operator` over them."""

from __future__ import annotations

import pytest

from model_garden_operator import config as cfg
from model_garden_operator.config import OperatorConfig, parse_args


def test_defaults() -> None:
    assert parse_args([], {}) == OperatorConfig()
    assert OperatorConfig().watch_namespaces == ()  # every namespace


def test_environment() -> None:
    env = {
        cfg.ENV_WATCH_NAMESPACES: "a, b,,",
        cfg.ENV_IMAGE_PULL_SECRETS: "regcred",
        cfg.ENV_LOG_LEVEL: "debug",
        cfg.ENV_LOG_FORMAT: "JSON",
        cfg.ENV_HEALTH_PORT: "9000",
    }
    config = OperatorConfig.from_env(env)
    assert config.watch_namespaces == ("a", "b") and config.image_pull_secrets == ("regcred",)
    assert (config.log_level, config.log_format, config.health_port) == ("DEBUG", "json", 9000)
    with pytest.raises(ValueError, match="must be 'text' or 'json'"):
        OperatorConfig.from_env({cfg.ENV_LOG_FORMAT: "xml"})


def test_flags_override_the_environment() -> None:
    env = {cfg.ENV_GPU_IMAGE: "from-env:1", cfg.ENV_WATCH_NAMESPACES: "a"}
    config = parse_args(["--gpu-image", "from-flag:2", "--log-level", "warning"], env)
    assert config.gpu_image == "from-flag:2"
    assert config.watch_namespaces == ("a",)
    assert config.log_level == "WARNING"
    assert parse_args(["--watch-namespaces", ""], env).watch_namespaces == ()
    assert parse_args(["--image-pull-secrets", "x,y"], {}).image_pull_secrets == ("x", "y")


def test_bad_flags_exit() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--log-format", "xml"], {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, True), ("", True), ("true", True), ("True", True), ("1", True), ("false", False), ("NO", False)],
)
def test_network_policy_from_the_environment(text: str | None, expected: bool) -> None:
    env = {} if text is None else {cfg.ENV_NETWORK_POLICY: text}
    assert OperatorConfig.from_env(env).network_policy is expected


def test_network_policy_setting_is_checked() -> None:
    with pytest.raises(ValueError, match=f"{cfg.ENV_NETWORK_POLICY} must be true or false"):
        OperatorConfig.from_env({cfg.ENV_NETWORK_POLICY: "maybe"})


def test_network_policy_flag_overrides_the_environment() -> None:
    assert parse_args(["--no-network-policy"], {}).network_policy is False
    assert parse_args(["--network-policy"], {cfg.ENV_NETWORK_POLICY: "false"}).network_policy is True
    assert parse_args([], {cfg.ENV_NETWORK_POLICY: "false"}).network_policy is False
