"""The SSRF-safe fetcher against a local recording server, with injected resolvers (no DNS here).

Every refusal is also checked for what did not happen: no connection to the recording server.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from model_garden.vision.fetcher import ImageFetcher
from model_garden_common import image_errors as errors
from model_garden_common.image_errors import ImageRefused
from model_garden_common.vision import VisionSettings
from tests.support.image_server import ImageServer, send_image
from tests.vision.conftest import FakeResolver


def fetcher(resolver: Any = None, **settings: Any) -> ImageFetcher:
    return ImageFetcher(VisionSettings(**settings), resolver=resolver or FakeResolver({}))


async def refusal(fetch: ImageFetcher, url: str) -> ImageRefused:
    with pytest.raises(ImageRefused) as caught:
        await fetch.fetch(url)
    return caught.value


# --- Fetching what is allowed ---------------------------------------------------------------------
async def test_fetches_an_allow_listed_name_from_the_checked_address(image_server: ImageServer) -> None:
    resolver = FakeResolver({"images.test": ["127.0.0.1"]})
    fetch = fetcher(resolver, allowed_image_hosts=(f"images.test:{image_server.port}",))
    fetched = await fetch.fetch(image_server.url("/image.png", host="images.test"))
    assert fetched.data == image_server.png and fetched.content_type == "image/png"
    # The name does not resolve on this machine: the connection went to the address we checked,
    # carrying the original Host header.
    assert resolver.calls == [("images.test", image_server.port)]
    (request,) = image_server.requests
    assert request.headers["Host"] == f"images.test:{image_server.port}"
    assert request.headers["Accept-Encoding"] == "identity"


async def test_cidr_allows_any_port(image_server: ImageServer) -> None:
    fetch = fetcher(allowed_image_hosts=("127.0.0.0/8",))
    for path in ("/image.png", "/image.jpg", "/image.gif", "/image.webp", "/octet"):
        assert (await fetch.fetch(image_server.url(path))).data


async def test_redirects_within_the_allowed_host_are_followed(image_server: ImageServer) -> None:
    fetch = fetcher(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",))
    url = image_server.url("/redirect?to=" + quote("/redirect?to=/image.png"))
    fetched = await fetch.fetch(url)
    assert fetched.data == image_server.png and fetched.url == image_server.url("/image.png")
    assert [r.path.split("?")[0] for r in image_server.requests] == ["/redirect", "/redirect", "/image.png"]


# --- Refusals before any connection ----------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/image.png",
        "http://2130706433:{port}/image.png",
        "http://0x7f000001:{port}/image.png",
        "http://127.1:{port}/image.png",
        "http://0177.0.0.1:{port}/image.png",
        "http://0.0.0.0:{port}/image.png",
        "http://0:{port}/image.png",
        "http://localhost:{port}/image.png",
        "http://[::1]:{port}/image.png",
        "http://[::ffff:127.0.0.1]:{port}/image.png",
        "http://[::ffff:7f00:1]:{port}/image.png",
    ],
)
async def test_loopback_spellings_make_no_connection(image_server: ImageServer, url: str) -> None:
    error = await refusal(fetcher(), url.format(port=image_server.port))
    assert error.reason == errors.ADDRESS_NOT_ALLOWED
    assert image_server.connections == []


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.0.1", "100.64.0.1", "[fd00::1]", "[fe80::1]"],
)
async def test_private_and_link_local_literals(address: str) -> None:
    error = await refusal(fetcher(), f"http://{address}/latest/meta-data/")
    assert error.reason == errors.ADDRESS_NOT_ALLOWED


async def test_a_name_resolving_to_loopback(image_server: ImageServer) -> None:
    resolver = FakeResolver({"evil.test": ["127.0.0.1"]})
    error = await refusal(fetcher(resolver), image_server.url("/image.png", host="evil.test"))
    assert error.reason == errors.ADDRESS_NOT_ALLOWED and "resolves to 127.0.0.1" in error.message
    assert resolver.calls and image_server.connections == []


async def test_a_mixed_answer_is_refused_whole(image_server: ImageServer) -> None:
    resolver = FakeResolver({"mixed.test": ["93.184.216.34", "127.0.0.1"]})
    error = await refusal(fetcher(resolver), image_server.url("/image.png", host="mixed.test"))
    assert error.reason == errors.ADDRESS_NOT_ALLOWED
    assert image_server.connections == []


async def test_allow_listed_name_on_another_port_is_checked_like_any_name(image_server: ImageServer) -> None:
    resolver = FakeResolver({"images.test": ["127.0.0.1"]})
    fetch = fetcher(resolver, allowed_image_hosts=("images.test:1",))
    error = await refusal(fetch, image_server.url("/image.png", host="images.test"))
    assert error.reason == errors.ADDRESS_NOT_ALLOWED
    assert image_server.connections == []


@pytest.mark.parametrize(
    "url",
    [
        "http://images.test:{port}@127.0.0.1:{port}/image.png",  # userinfo names the allowed host
        "http://images.test@127.0.0.1:{port}/image.png",
        "http://127.0.0.1:{port}\\@images.test:{port}/image.png",
    ],
)
async def test_userinfo_tricks_against_the_allow_list(image_server: ImageServer, url: str) -> None:
    fetch = fetcher(FakeResolver({"images.test": ["93.184.216.34"]}), allowed_image_hosts=("images.test:80",))
    error = await refusal(fetch, url.format(port=image_server.port))
    assert error.reason == errors.UNSUPPORTED_URL
    assert image_server.connections == []


async def test_fragment_trick_against_the_allow_list(image_server: ImageServer) -> None:
    fetch = fetcher(allowed_image_hosts=("images.test:80",))
    error = await refusal(fetch, f"http://127.0.0.1:{image_server.port}#@images.test:80/image.png")
    assert error.reason == errors.ADDRESS_NOT_ALLOWED
    assert image_server.connections == []


async def test_hosts_only_refuses_before_resolving() -> None:
    resolver = FakeResolver({"example.com": ["93.184.216.34"]})
    fetch = fetcher(resolver, allowed_image_hosts=("images.internal:443",), allowed_image_hosts_only=True)
    error = await refusal(fetch, "https://example.com/cat.png")
    assert error.reason == errors.HOST_NOT_ALLOWED
    assert resolver.calls == []


# --- Redirects ----------------------------------------------------------------------------------------
async def test_redirect_to_a_private_address_is_refused(image_server: ImageServer) -> None:
    with ImageServer() as internal:
        fetch = fetcher(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",))
        hops = [
            f"http://127.0.0.1:{internal.port}/image.png",
            f"http://2130706433:{internal.port}/image.png",
            f"http://[::1]:{internal.port}/image.png",
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://10.0.0.1/",
        ]
        for hop in hops:
            error = await refusal(fetch, image_server.url("/redirect?to=" + quote(hop)))
            assert error.reason == errors.ADDRESS_NOT_ALLOWED, hop
        assert internal.connections == []
        assert len(image_server.connections) == len(hops)  # only the allowed first hops


async def test_redirect_to_a_name_resolving_to_loopback(image_server: ImageServer) -> None:
    with ImageServer() as internal:
        resolver = FakeResolver({"rebind.test": ["127.0.0.1"]})
        fetch = fetcher(resolver, allowed_image_hosts=(f"127.0.0.1:{image_server.port}",))
        target = internal.url("/image.png", host="rebind.test")
        error = await refusal(fetch, image_server.url("/redirect?to=" + quote(target)))
        assert error.reason == errors.ADDRESS_NOT_ALLOWED
        assert internal.connections == []


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "data:image/png;base64,AAAA", "gopher://127.0.0.1/"]
)
async def test_redirect_to_other_schemes(image_server: ImageServer, location: str) -> None:
    fetch = fetcher(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",))
    error = await refusal(fetch, image_server.url("/redirect?to=" + quote(location)))
    assert error.reason == errors.UNSUPPORTED_URL


async def test_too_many_redirects(image_server: ImageServer) -> None:
    fetch = fetcher(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",), image_max_redirects=2)
    error = await refusal(fetch, image_server.url("/loop"))
    assert error.reason == errors.TOO_MANY_REDIRECTS and "2" in error.message
    assert len(image_server.requests) == 3
    fetch = fetcher(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",), image_max_redirects=0)
    error = await refusal(fetch, image_server.url("/redirect?to=/image.png"))
    assert error.reason == errors.TOO_MANY_REDIRECTS


# --- What comes back -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/html", errors.NOT_AN_IMAGE),
        ("/notfound", errors.FETCH_FAILED),
        ("/gzip", errors.FETCH_FAILED),
        ("/huge-declared", errors.IMAGE_TOO_LARGE),
    ],
)
async def test_bad_answers(image_server: ImageServer, path: str, reason: str) -> None:
    fetch = fetcher(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",))
    assert (await refusal(fetch, image_server.url(path))).reason == reason


async def test_download_stops_at_the_byte_limit(image_server: ImageServer) -> None:
    fetch = fetcher(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",), max_image_bytes=3_000_000)
    error = await refusal(fetch, image_server.url("/huge"))
    assert error.reason == errors.IMAGE_TOO_LARGE and "download stopped" in error.message
    deadline = time.monotonic() + 10
    while not image_server.huge_bytes_sent and time.monotonic() < deadline:
        time.sleep(0.05)
    # The server could send about 1 GB; the client hung up after a few MB (plus socket buffers).
    assert image_server.huge_bytes_sent[0] < 100_000_000


async def test_timeout_covers_the_whole_fetch(image_server: ImageServer) -> None:
    image_server.slow_seconds = 3
    fetch = fetcher(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",), image_fetch_timeout=0.5)
    started = time.monotonic()
    error = await refusal(fetch, image_server.url("/slow"))
    assert error.reason == errors.FETCH_TIMEOUT and "--image-fetch-timeout" in error.message
    assert time.monotonic() - started < 2


async def test_downloads_wait_for_a_free_slot_outside_the_fetch_timeout(image_server: ImageServer) -> None:
    # Each answer takes 0.4 s; with one slot, five downloads take 2 s, beyond the 1 s fetch timeout,
    # and all succeed: the wait for a slot is not part of a fetch's deadline.
    busy = {"now": 0, "most": 0}
    lock = threading.Lock()

    def counted(handler: Any) -> None:
        with lock:
            busy["now"] += 1
            busy["most"] = max(busy["most"], busy["now"])
        time.sleep(0.4)  # a slow image server
        with lock:
            busy["now"] -= 1
        send_image(handler, image_server.png)

    image_server.extra_routes["/counted"] = counted
    allowed = (f"127.0.0.1:{image_server.port}",)
    for slots in (1, 5):
        busy["most"] = 0
        fetch = fetcher(
            allowed_image_hosts=allowed, image_fetch_timeout=1.0, max_concurrent_image_fetches=slots
        )
        fetched = await asyncio.gather(*(fetch.fetch(image_server.url("/counted")) for _ in range(5)))
        assert [f.data for f in fetched] == [image_server.png] * 5
        # One at a time with one slot; with five, as a control, they overlap.
        assert busy["most"] == 1 if slots == 1 else busy["most"] > 1


async def test_unresolvable_and_unreachable() -> None:
    error = await refusal(fetcher(FakeResolver({})), "http://nowhere.test/x.png")
    assert error.reason == errors.FETCH_FAILED
    fetch = fetcher(allowed_image_hosts=("127.0.0.1:9",))
    assert (await refusal(fetch, "http://127.0.0.1:9/x.png")).reason == errors.FETCH_FAILED


async def test_proxy_settings_of_the_environment_are_ignored(
    image_server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ImageServer() as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url("/"))
        fetch = fetcher(allowed_image_hosts=(f"127.0.0.1:{image_server.port}",))
        assert (await fetch.fetch(image_server.url("/image.png"))).data == image_server.png
        assert proxy.connections == []


# --- https: the name goes in SNI and the certificate must match it ----------------------------------
def _certificate(tmp: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A CA, a server certificate for `name` signed by it: (server context, client context)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: Any, key: Any, signer: Any, ca: bool, san: list[Any]) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = build("test CA", ca_name, ca_key, ca_key, True, [])
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build(name, ca.subject, key, ca_key, False, [x509.DNSName(name)])
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[ImageServer, ssl.SSLContext]]:
    server_context, client_context = _certificate(tmp_path, "images.test")
    with ImageServer(tls=server_context) as server:
        yield server, client_context


def https_fetcher(client: ssl.SSLContext, names: dict[str, list[str]], allowed: str) -> ImageFetcher:
    settings = VisionSettings(allowed_image_hosts=(allowed,))
    return ImageFetcher(settings, resolver=FakeResolver(names), ssl_context=client)


async def test_https_sends_the_name_as_sni_and_verifies_it(
    tls_server: tuple[ImageServer, ssl.SSLContext],
) -> None:
    server, client = tls_server
    fetch = https_fetcher(client, {"images.test": ["127.0.0.1"]}, f"images.test:{server.port}")
    fetched = await fetch.fetch(server.url("/image.png", host="images.test"))
    assert fetched.data == server.png
    assert server.sni_names == ["images.test"]


async def test_https_certificate_must_match_the_name(tls_server: tuple[ImageServer, ssl.SSLContext]) -> None:
    server, client = tls_server
    fetch = https_fetcher(client, {"other.test": ["127.0.0.1"]}, f"other.test:{server.port}")
    error = await refusal(fetch, server.url("/image.png", host="other.test"))
    assert error.reason == errors.FETCH_FAILED
    assert server.requests == []


def test_injected_resolver_type() -> None:
    resolver: Callable[..., Any] = FakeResolver({"a.test": ["10.0.0.1"]})
    assert ipaddress.ip_address("10.0.0.1") in FakeResolver({"a.test": ["10.0.0.1"]}).names["a.test"]
    assert callable(resolver)
