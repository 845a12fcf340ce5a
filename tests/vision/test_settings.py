"""The vision settings and their one flag table: defaults, round trips, the CLI, vLLM's media flags."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from model_garden_common.constants import DEFAULT_MAX_IMAGE_BYTES
from model_garden_common.settings import (
    ENGINE_FLAGS,
    SettingsError,
    find_managed_flag_collisions,
    managed_flags,
)
from model_garden_common.vision import (
    VISION_FLAGS,
    VisionSettings,
    parse_vision_args,
    vision_settings,
)


def test_safe_defaults() -> None:
    defaults = VisionSettings()
    assert defaults.max_image_bytes == DEFAULT_MAX_IMAGE_BYTES
    assert defaults.allowed_image_hosts == () and defaults.allowed_local_image_dir is None
    assert not defaults.allowed_image_hosts_only
    # One image of the largest size fits in a request as a data URL.
    assert defaults.max_request_bytes > 4 * DEFAULT_MAX_IMAGE_BYTES // 3 + 1024
    assert defaults.to_args() == []


def test_every_field_has_exactly_one_row() -> None:
    assert [row.field for row in VISION_FLAGS] == list(VisionSettings.model_fields)
    flags = [row.flag for row in VISION_FLAGS]
    assert len(set(flags)) == len(flags)
    # Runtime flags: none collides with an engine flag.
    assert not set(flags) & {spelling for row in ENGINE_FLAGS for spelling in row.spellings}


CASES: dict[str, dict[str, Any]] = {
    "limits": {
        "max_images_per_request": 2,
        "max_image_bytes": 1234,
        "max_image_pixels": 1_000_000,
        "max_request_bytes": 4096,
        "image_fetch_timeout": 2.5,
        "image_max_redirects": 0,
    },
    "allow-list": {"allowed_image_hosts": ("images.internal:8080", "10.0.0.0/8", "[fd00::5]:443")},
    "hosts-only": {"allowed_image_hosts": ("images.internal:443",), "allowed_image_hosts_only": True},
    "local": {"allowed_local_image_dir": "/srv/images", "max_images_per_request": 0},
}


@pytest.mark.parametrize("values", CASES.values(), ids=CASES.keys())
def test_round_trip(values: dict[str, Any]) -> None:
    settings = VisionSettings(**values)
    parsed, rest = parse_vision_args(settings.to_args())
    assert parsed == settings and rest == []


def test_flags_come_in_table_order_and_only_when_not_default() -> None:
    args = VisionSettings(
        allowed_local_image_dir="/d", max_image_pixels=10, allowed_image_hosts=("a:1", "b:2")
    ).to_args()
    assert args == [
        "--max-image-pixels",
        "10",
        "--allowed-image-hosts",
        "a:1,b:2",
        "--allowed-local-image-dir",
        "/d",
    ]


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"max_images_per_request": -1}, "max_images_per_request"),
        ({"max_image_bytes": 0}, "max_image_bytes"),
        ({"max_image_pixels": 10**10}, "max_image_pixels"),
        ({"image_fetch_timeout": 0}, "image_fetch_timeout"),
        ({"image_max_redirects": 50}, "image_max_redirects"),
        ({"allowed_image_hosts": "images.internal"}, "host:port"),
        ({"allowed_image_hosts": "10.0.0.0/40"}, "CIDR"),
        ({"allowed_local_image_dir": "relative/dir"}, "absolute"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_settings_are_one_readable_error(values: dict[str, Any], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        vision_settings(**values)


def test_vllm_media_flags_cannot_be_passed_through() -> None:
    # vLLM would fetch URLs or read files itself with these: refused as extra engine flags.
    assert "--allowed-local-media-path" in managed_flags()
    extra = ["--allowed-local-media-path", "/", "--allowed_media_domains=x"]
    assert find_managed_flag_collisions(extra) == ["--allowed-local-media-path", "--allowed-media-domains"]


@pytest.mark.parametrize("command", ["serve", "serve-model", "inference-generate", "inference-chat"])
def test_every_command_takes_the_vision_options(command: str) -> None:
    from model_garden.cli import main

    result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for row in VISION_FLAGS:
        assert row.flag in result.output


def test_cli_refuses_bad_vision_options(tmp_path: Any) -> None:
    from model_garden.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["serve", "--allowed-image-hosts", "nohostport"])
    assert result.exit_code == 2 and "host:port" in result.output
    result = runner.invoke(main, ["serve", "--allowed-local-image-dir", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "not an existing directory" in result.output
