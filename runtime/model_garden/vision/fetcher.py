"""Fetch an image URL without letting a client aim the server at what it should not reach (SSRF).

For each hop (the URL, then every redirect, at most --image-max-redirects):
1. parse and normalize the URL (addresses.parse_http_url): http(s) only, no credentials;
2. check the host against the allow-list and the address policy, resolve the name with the
   (injectable) resolver, and check every address it resolves to;
3. connect to a checked address itself: the request goes to `scheme://<address>:<port>` with the
   original `Host` header and, for https, the original name as SNI and for certificate checks, so
   no second resolution can lead elsewhere (DNS rebinding). No proxy from the environment, no
   pooled connection is reused, redirects are never followed by the client library;
4. stream the body, refusing a non-image content type, any content encoding, and more than
   --max-image-bytes (from Content-Length, or as soon as the stream passes it).
The whole fetch, hops included, runs under one --image-fetch-timeout deadline, once one of the
--max-concurrent-image-fetches slots is free (the slots bound the memory downloads hold).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from model_garden.vision.decoder import check_size
from model_garden_common.addresses import (
    AllowList,
    IPAddress,
    Target,
    check_address,
    check_target,
    parse_http_url,
    unmapped,
)
from model_garden_common.image_errors import (
    FETCH_FAILED,
    FETCH_TIMEOUT,
    IMAGE_TOO_LARGE,
    NOT_AN_IMAGE,
    TOO_MANY_REDIRECTS,
    ImageRefused,
)
from model_garden_common.vision import VisionSettings

# (host, port) -> the addresses it resolves to. Tests inject one: there is no DNS everywhere.
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Servers label images loosely; the bytes are checked by the decoder whatever this says.
_BINARY_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
USER_AGENT = "model-garden-image-fetcher"


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The operating system's resolver (getaddrinfo), addresses in its order, without duplicates."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


@dataclass(frozen=True)
class Fetched:
    data: bytes | bytearray
    content_type: str
    url: str  # after redirects


class ImageFetcher:
    def __init__(
        self,
        settings: VisionSettings,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.allow = AllowList.parse(settings.allowed_image_hosts)
        self.resolver: Resolver = resolver or system_resolver
        self._verify: ssl.SSLContext | bool = ssl_context or True
        self._slots = asyncio.Semaphore(settings.max_concurrent_image_fetches)

    async def fetch(self, url: str) -> Fetched:
        timeout = self.settings.image_fetch_timeout
        try:
            async with self._slots, asyncio.timeout(timeout):
                return await self._follow(url)
        except TimeoutError:
            raise ImageRefused(
                FETCH_TIMEOUT, f"fetching the image took longer than --image-fetch-timeout {timeout:g} s"
            ) from None

    async def _follow(self, url: str) -> Fetched:
        limit = self.settings.image_max_redirects
        for _hop in range(limit + 1):
            target = parse_http_url(url)
            addresses = await self.vet(target)
            result = await self._get(target, addresses)
            if isinstance(result, Fetched):
                return Fetched(result.data, result.content_type, url)
            url = urljoin(url, result)
        raise ImageRefused(TOO_MANY_REDIRECTS, f"more than --image-max-redirects {limit} redirects")

    async def vet(self, target: Target) -> list[IPAddress]:
        """The addresses `target` may be connected to; ImageRefused if any it names is not allowed."""
        hosts_only = self.settings.allowed_image_hosts_only
        host_allowed = check_target(target, self.allow, hosts_only)
        if target.address is not None:
            return [unmapped(target.address)]
        try:
            addresses = list(await self.resolver(target.host, target.port))
        except (OSError, UnicodeError) as error:
            raise ImageRefused(FETCH_FAILED, f"cannot resolve {target.host}: {error}") from None
        if not addresses:
            raise ImageRefused(FETCH_FAILED, f"{target.host} resolves to no address")
        if not host_allowed:
            # Every answer is checked, not just the first: a mixed answer is refused as a whole.
            for address in addresses:
                check_address(target, address, self.allow, hosts_only)
        return [unmapped(address) for address in addresses]

    async def _get(self, target: Target, addresses: list[IPAddress]) -> Fetched | str:
        """GET `target` from the first checked address that accepts a connection: the image, or the
        Location of a redirect."""
        headers = {
            "Host": target.host_header,
            "Accept": "image/*",
            "Accept-Encoding": "identity",
            "User-Agent": USER_AGENT,
        }
        # For https, the name (not the address) goes in SNI and is what the certificate must match.
        named_tls = target.scheme == "https" and target.address is None
        extensions: dict[str, Any] = {"timeout": httpx.Timeout(self.settings.image_fetch_timeout).as_dict()}
        if named_tls:
            extensions["sni_hostname"] = target.host
        # The transport alone, not a client: no redirect handling, cookies, auth or proxies of
        # the environment, and no connection kept for another request.
        transport = httpx.AsyncHTTPTransport(
            verify=self._verify, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
        )
        async with transport:
            last_error: Exception | None = None
            for address in addresses:
                literal = f"[{address}]" if address.version == 6 else str(address)
                request = httpx.Request(
                    "GET",
                    f"{target.scheme}://{literal}:{target.port}{target.path}",
                    headers=headers,
                    extensions=extensions,
                )
                try:
                    response = await transport.handle_async_request(request)
                except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                    last_error = error
                    continue
                except httpx.HTTPError as error:
                    raise _failed(target, error) from None
                try:
                    return await self._read(target, response)
                except httpx.HTTPError as error:
                    raise _failed(target, error) from None
                finally:
                    await response.aclose()
        raise ImageRefused(FETCH_FAILED, f"cannot connect to {target.display}: {last_error}")

    async def _read(self, target: Target, response: httpx.Response) -> Fetched | str:
        if response.status_code in REDIRECT_STATUSES:
            location = response.headers.get("location")
            if not location:
                raise ImageRefused(FETCH_FAILED, f"{target.display} redirected without a Location")
            return location
        if response.status_code != 200:
            raise ImageRefused(FETCH_FAILED, f"{target.display} answered HTTP {response.status_code}")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise ImageRefused(FETCH_FAILED, f"{target.display} sent a {encoding!r}-encoded body")
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type and not content_type.startswith("image/") and content_type not in _BINARY_TYPES:
            raise ImageRefused(NOT_AN_IMAGE, f"{target.display} sent {content_type!r}, not an image")
        max_bytes = self.settings.max_image_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit():
            check_size(int(declared), max_bytes)
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > max_bytes:
                raise ImageRefused(
                    IMAGE_TOO_LARGE,
                    f"{target.display} sent more than --max-image-bytes {max_bytes:,} (download stopped)",
                )
        return Fetched(body, content_type, "")


def _failed(target: Target, error: Exception) -> ImageRefused:
    return ImageRefused(FETCH_FAILED, f"{target.display}: {str(error) or type(error).__name__}")
