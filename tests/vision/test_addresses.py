"""The address policy: every spelling of a non-public address is recognized and refused."""

from __future__ import annotations

import ipaddress

import pytest

from model_garden_common import image_errors as errors
from model_garden_common.addresses import (
    AllowList,
    check_address,
    check_target,
    is_public,
    parse_allow_entry,
    parse_http_url,
    unmapped,
)
from model_garden_common.image_errors import ImageRefused

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/",
    "http://2130706433/",  # decimal
    "http://0x7f000001/",  # hex
    "http://0x7f.0.0.1/",
    "http://0177.0.0.1/",  # octal
    "http://017700000001/",
    "http://127.1/",  # short forms
    "http://127.0.1/",
    "http://127.0.0.1./",  # trailing dot
    "http://127.000.000.001/",
    "http://127.255.255.254/",
    "http://\uff11\uff12\uff17.0.0.1/",  # full-width digits (IDNA maps them)
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible (deprecated)
    "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
]

NON_PUBLIC = [
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",  # CGNAT
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.1",
    "192.0.2.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "fc00::1",
    "fd12:3456::1",  # unique local
    "fe80::1",  # link-local
    "fec0::1",  # site-local
    "ff02::1",  # multicast
    "2001:db8::1",  # documentation
    "2001::1",  # Teredo
    "100::1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::1",
]

PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2001:4860:4860::8888", "2606:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
def test_every_spelling_of_loopback_is_an_address_and_refused(url: str) -> None:
    target = parse_http_url(url)
    assert target.address is not None
    assert not is_public(target.address)
    with pytest.raises(ImageRefused) as caught:
        check_target(target, AllowList(), hosts_only=False)
    assert caught.value.reason == errors.ADDRESS_NOT_ALLOWED


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public(unmapped(ipaddress.ip_address(address)))


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "api.localhost"])
def test_localhost_names_are_loopback_without_asking_a_resolver(host: str) -> None:
    target = parse_http_url(f"http://{host}:8080/x.png")
    assert target.address is None
    with pytest.raises(ImageRefused) as caught:
        check_target(target, AllowList(), hosts_only=False)
    assert caught.value.reason == errors.ADDRESS_NOT_ALLOWED


@pytest.mark.parametrize(
    "url",
    [
        "http://allowed.test@127.0.0.1/",  # userinfo
        "http://allowed.test:80@127.0.0.1/",
        "http://user:pass@allowed.test/",
        "http://allowed.test\\@127.0.0.1/",  # backslash
        "http://allowed.test /",
        "http://allowed.test\t/",
        "ftp://allowed.test/x.png",
        "gopher://127.0.0.1:6379/_",
        "http:///x.png",
        "http://1.2.3.4.5/",
        "http://256.0.0.1/",
        "http://0x100000000/",
        "http://127.0.0.1:0/",
        "http://127.0.0.1:99999/",
        "http://[fe80::1%25eth0]/",  # zone identifier
        "http://%31%32%37.0.0.1/",  # percent-encoded host
        "http://exa$mple.test/",
        "http://[::1/",
    ],
)
def test_malformed_or_tricky_urls_are_refused(url: str) -> None:
    with pytest.raises(ImageRefused) as caught:
        parse_http_url(url)
    assert caught.value.reason == errors.UNSUPPORTED_URL


def test_fragment_tricks_parse_to_the_real_host() -> None:
    # The host is what comes before '#': the allow-listed name after it is only a fragment.
    target = parse_http_url("http://127.0.0.1:9#@allowed.test:80/")
    assert (target.host, target.port, target.path) == ("127.0.0.1", 9, "/")
    allow = AllowList.parse(["allowed.test:80"])
    with pytest.raises(ImageRefused):
        check_target(target, allow, hosts_only=False)


def test_normalization() -> None:
    target = parse_http_url("HTTP://Images.Example.COM.:8080/a/b.png?x=1#frag")
    assert (target.scheme, target.host, target.port, target.path) == (
        "http",
        "images.example.com",
        8080,
        "/a/b.png?x=1",
    )
    assert target.host_header == "images.example.com:8080"
    assert parse_http_url("https://example.com/").host_header == "example.com"
    assert parse_http_url("http://[::ffff:7f00:1]:81/").host_header == "[::ffff:7f00:1]:81"


# --- Allow-lists ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("images.internal:8080", ("images.internal", 8080)),
        ("Images.Internal.:443", ("images.internal", 443)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("2130706433:9000", ("127.0.0.1", 9000)),
        ("[::1]:9000", ("::1", 9000)),
        ("10.0.0.0/8", ipaddress.ip_network("10.0.0.0/8")),
        ("10.1.2.3", ipaddress.ip_network("10.1.2.3/32")),
        ("fd00::/8", ipaddress.ip_network("fd00::/8")),
    ],
)
def test_allow_entries(entry: str, parsed: object) -> None:
    assert parse_allow_entry(entry) == parsed


@pytest.mark.parametrize(
    "entry", ["images.internal", "host:0", "host:70000", "host:x", "10.0.0.0/33", "", "a b:80"]
)
def test_bad_allow_entries(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_allow_entry(entry)


def test_host_entries_match_host_and_port_exactly() -> None:
    allow = AllowList.parse(["images.internal:8080", "127.0.0.1:9000"])
    assert check_target(parse_http_url("http://images.internal:8080/a.png"), allow, hosts_only=False)
    assert check_target(parse_http_url("http://0x7f000001:9000/a.png"), allow, hosts_only=False)
    # Same host, another port: not the allow-listed service.
    with pytest.raises(ImageRefused):
        check_target(parse_http_url("http://127.0.0.1:9001/a.png"), allow, hosts_only=False)
    # An allow-listed name on another port resolves like any other name: its addresses are checked.
    assert not check_target(parse_http_url("http://images.internal:8081/a.png"), allow, hosts_only=False)


def test_cidr_entries_allow_addresses_on_any_port() -> None:
    allow = AllowList.parse(["10.0.0.0/8", "fd00::/8"])
    target = parse_http_url("http://name.test/")
    check_address(target, ipaddress.ip_address("10.9.8.7"), allow, hosts_only=False)
    check_address(target, ipaddress.ip_address("fd00::5"), allow, hosts_only=False)
    with pytest.raises(ImageRefused):
        check_address(target, ipaddress.ip_address("192.168.0.1"), allow, hosts_only=False)


def test_hosts_only_refuses_public_hosts_not_listed() -> None:
    allow = AllowList.parse(["images.internal:443"])
    with pytest.raises(ImageRefused) as caught:
        check_target(parse_http_url("https://example.com/"), allow, hosts_only=True)
    assert caught.value.reason == errors.HOST_NOT_ALLOWED
    with pytest.raises(ImageRefused) as caught:
        check_target(parse_http_url("https://8.8.8.8/"), allow, hosts_only=True)
    assert caught.value.reason == errors.HOST_NOT_ALLOWED
    assert check_target(parse_http_url("https://images.internal/"), allow, hosts_only=True)
