"""The CRD's `vision` section: schema, admission, parsing into VisionSettings, and the runtime flags
the builders pass on (none when the section is absent, so existing Deployments do not change)."""

from __future__ import annotations

from typing import Any

import pytest

from model_garden_common.settings import DISABLE_MANAGEMENT_OPTION, PORT_OPTION
from model_garden_common.vision import VisionSettings, parse_vision_args
from model_garden_operator.builders import build_deployment
from model_garden_operator.crd_spec_schema import VISION_FIELDS, spec_schema
from model_garden_operator.spec import InvalidSpecError, parse_model
from tests.unit.crd_admission import admit
from tests.unit.factories import make_config, make_model

FULL = {
    "maxImagesPerPrompt": 4,
    "maxImageBytes": 5_000_000,
    "maxImagePixels": 8_000_000,
    "maxRequestBytes": 20_000_000,
    "fetchTimeoutSeconds": 7.5,
    "maxRedirects": 1,
    "maxConcurrentFetches": 4,
    "allowedHosts": ["images.internal:8080", "10.0.0.0/8", "[fd00::5]:443"],
    "allowedHostsOnly": True,
    "allowedLocalDirectory": "/models/images",
}


def container_args(obj: dict[str, Any]) -> list[str]:
    return build_deployment(obj, make_config())["spec"]["template"]["spec"]["containers"][0]["args"]


def vision_args(args: list[str]) -> list[str]:
    """The serve-model options between --port's value and --disable-management-routes."""
    return args[args.index(PORT_OPTION) + 2 : args.index(DISABLE_MANAGEMENT_OPTION)]


def test_every_vision_setting_has_a_crd_field() -> None:
    assert sorted(VISION_FIELDS.values()) == sorted(VisionSettings.model_fields)
    assert set(spec_schema()["properties"]["vision"]["properties"]) == set(VISION_FIELDS)


def test_descriptions_state_the_runtime_defaults() -> None:
    fields = spec_schema()["properties"]["vision"]["properties"]
    assert "Default: 10485760" in fields["maxImageBytes"]["description"]
    assert "Default: 8." in fields["maxImagesPerPrompt"]["description"]


def test_a_full_section_is_admitted_parsed_and_passed_on() -> None:
    obj = make_model(vision=FULL)
    assert admit(obj)[1] == []
    model = parse_model(obj)
    expected = VisionSettings(
        max_images_per_request=4,
        max_image_bytes=5_000_000,
        max_image_pixels=8_000_000,
        max_request_bytes=20_000_000,
        image_fetch_timeout=7.5,
        image_max_redirects=1,
        max_concurrent_image_fetches=4,
        allowed_image_hosts=("images.internal:8080", "10.0.0.0/8", "[fd00::5]:443"),
        allowed_image_hosts_only=True,
        allowed_local_image_dir="/models/images",
    )
    assert model.vision == expected
    # What the runtime's own parser reads back from the container's args.
    assert parse_vision_args(vision_args(container_args(obj))) == (expected, [])


def test_absent_or_empty_section_adds_no_flags() -> None:
    assert vision_args(container_args(make_model())) == []
    assert vision_args(container_args(make_model(vision={}))) == []
    assert parse_model(make_model(vision={})).vision == VisionSettings()


def test_only_the_fields_given_become_flags() -> None:
    args = vision_args(container_args(make_model(vision={"maxImagesPerPrompt": 2, "fetchTimeoutSeconds": 3})))
    assert args == ["--max-images-per-request", "2", "--image-fetch-timeout", "3.0"]


@pytest.mark.parametrize(
    ("vision", "field"),
    [
        ({"maxImagesPerPrompt": -1}, "spec.vision.maxImagesPerPrompt"),
        ({"maxImageBytes": 0}, "spec.vision.maxImageBytes"),
        ({"maxImagePixels": 10**10}, "spec.vision.maxImagePixels"),
        ({"maxRequestBytes": 10}, "spec.vision.maxRequestBytes"),
        ({"fetchTimeoutSeconds": 0}, "spec.vision.fetchTimeoutSeconds"),
        ({"maxRedirects": 21}, "spec.vision.maxRedirects"),
        ({"maxConcurrentFetches": 0}, "spec.vision.maxConcurrentFetches"),
        ({"allowedHosts": ["images.internal"]}, "spec.vision.allowedHosts"),
        ({"allowedLocalDirectory": "images"}, "spec.vision.allowedLocalDirectory"),
    ],
)
def test_bad_values_are_refused_at_admission_and_by_the_operator(vision: dict[str, Any], field: str) -> None:
    obj = make_model(vision=vision)
    errors = admit(obj)[1]
    assert errors and all(".vision." in error for error in errors), errors
    with pytest.raises(InvalidSpecError) as caught:
        parse_model(obj)
    assert caught.value.field_path == field


def test_entries_the_pattern_admits_are_still_checked_by_the_operator() -> None:
    obj = make_model(vision={"allowedHosts": ["10.0.0.0/99"]})
    assert admit(obj)[1] == []
    with pytest.raises(InvalidSpecError, match="CIDR"):
        parse_model(obj)


def test_vllm_media_flags_in_extra_args_point_at_spec_vision() -> None:
    with pytest.raises(InvalidSpecError, match=r"spec\.vision"):
        parse_model(make_model(extraArgs=["--allowed-local-media-path", "/"]))
    with pytest.raises(InvalidSpecError, match="abbreviates --allowed-media-domains"):
        parse_model(make_model(extraArgs=["--allowed-media-dom", "x"]))
