"""Which addresses an image URL may reach: URL and host parsing, the public-address rule, allow-lists.

Pure functions (no I/O, nothing heavy imported): the fetcher uses them before every connection,
and the settings use them to check allow-list entries. Hosts are parsed the way browsers and
curl read them (the WHATWG URL standard), so every spelling of an address is recognized:
`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`, `127.0.0.1.`, `[::1]`, `[::ffff:127.0.0.1]`
are all 127.0.0.1 or ::1 here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from model_garden_common.image_errors import (
    ADDRESS_NOT_ALLOWED,
    HOST_NOT_ALLOWED,
    UNSUPPORTED_URL,
    ImageRefused,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_FORBIDDEN_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")

# Ranges that are not public although some `ipaddress` versions call parts of them global, or
# that embed another address (checked separately). Complements ipaddress' own properties.
_NON_PUBLIC = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast
        "198.18.0.0/15",  # benchmarking
        "::/96",  # IPv4-compatible (deprecated)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) included
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


@dataclass(frozen=True)
class Target:
    """An http(s) URL, parsed and normalized: what is checked is what is connected to."""

    scheme: str
    host: str  # lowercase ASCII name, or the address in its canonical text (no brackets)
    port: int
    path: str  # path and query, at least "/" (the fragment is never sent)
    address: IPAddress | None  # set when the host is an address literal

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def display(self) -> str:
        return f"{self.scheme}://{self.host_header}"


def parse_http_url(url: str) -> Target:
    """Parse an http(s) URL strictly, or raise ImageRefused(unsupported_url)."""
    if _FORBIDDEN_URL_CHARS.search(url):
        raise _bad_url("contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise _bad_url(str(error)) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _bad_url(f"scheme {parts.scheme!r} is not http or https")
    if "@" in parts.netloc:
        raise _bad_url("carries credentials (user@host), which are not accepted")
    if parts.hostname is None or parts.hostname == "":
        raise _bad_url("has no host")
    if port == 0:
        raise _bad_url("port 0")
    host, address = normalize_host(parts.hostname, bracketed=parts.netloc.startswith("["))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port or DEFAULT_PORTS[scheme], path, address)


def normalize_host(host: str, *, bracketed: bool = False) -> tuple[str, IPAddress | None]:
    """(canonical host text, address if the host is an address literal); ImageRefused if invalid."""
    if bracketed or ":" in host:
        if "%" in host:
            raise _bad_url("IPv6 zone identifiers are not accepted")
        try:
            address6 = ipaddress.IPv6Address(host)
        except ValueError:
            raise _bad_url(f"invalid IPv6 address {host!r}") from None
        return str(address6), address6
    try:
        # IDNA 2003 with nameprep: maps full-width and other look-alike digits to ASCII, as
        # browsers do before deciding whether a host is an IPv4 address.
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise _bad_url(f"invalid host name {host!r}") from None
    ascii_host = ascii_host.lower()
    address4 = parse_ipv4(ascii_host)
    if address4 is not None:
        return str(address4), address4
    name = ascii_host[:-1] if ascii_host.endswith(".") else ascii_host
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise _bad_url(f"invalid host name {host!r}")
    return name, None


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The WHATWG URL standard's IPv4 parser: None when `host` is a domain, else the address.

    A host whose last label is a number is an IPv4 address in some spelling (decimal, octal with a
    leading 0, hex with 0x, 1 to 4 parts); when it does not parse, the URL is invalid.
    """
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if not _is_number(parts[-1]):
        return None
    if len(parts) > 4:
        raise _bad_url(f"invalid IPv4 address {host!r}")
    numbers = []
    for part in parts:
        number = _parse_ipv4_number(part)
        if number is None:
            raise _bad_url(f"invalid IPv4 address {host!r}")
        numbers.append(number)
    if any(number > 255 for number in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise _bad_url(f"invalid IPv4 address {host!r}")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number * 256 ** (3 - index)
    return ipaddress.IPv4Address(value)


def _is_number(label: str) -> bool:
    if label.isdigit() and label.isascii():
        return True
    return label[:2] in ("0x", "0X") and all(ch in "0123456789abcdefABCDEF" for ch in label[2:])


def _parse_ipv4_number(part: str) -> int | None:
    if part == "":
        return None
    base = 10
    if part[:2] in ("0x", "0X"):
        part, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, base = part[1:], 8
    if part == "":
        return 0
    try:
        return int(part, base) if part.isascii() and part.isalnum() else None
    except ValueError:
        return None


def is_public(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses (IPv4 or IPv6, embedded ones included).

    Loopback, private, link-local (169.254.169.254 among them), unique-local, multicast, reserved,
    unspecified, documentation, CGNAT and benchmarking ranges are not public; nor is an IPv6
    address that embeds a non-public IPv4 one (IPv4-mapped, 6to4, NAT64).
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
        if address.is_site_local:
            return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
        or any(address in network for network in _NON_PUBLIC if network.version == address.version)
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def unmapped(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it is (what a socket connects to)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# --- Allow-lists ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AllowList:
    """Exceptions to the public-address rule: exact `host:port` pairs and address ranges (CIDR).

    A URL whose normalized host and port equal a `host:port` entry may reach whatever its host
    resolves to; otherwise every address it resolves to must be public or inside a CIDR entry.
    """

    hosts: frozenset[tuple[str, int]] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        hosts: set[tuple[str, int]] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            parsed = parse_allow_entry(entry)
            if isinstance(parsed, tuple):
                hosts.add(parsed)
            else:
                networks.append(parsed)
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, target: Target) -> bool:
        return (target.host, target.port) in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks if network.version == address.version)


def parse_allow_entry(entry: str) -> tuple[str, int] | IPNetwork:
    """`host:port`, `[v6]:port` or a CIDR (`10.0.0.0/8`, `fd00::/8`, a bare address); ValueError."""
    text = entry.strip()
    if not text:
        raise ValueError("empty allow-list entry")
    if "/" in text or _is_bare_address(text):
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not a valid CIDR range") from None
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{entry!r}: give host:port (e.g. images.internal:443) or a CIDR range")
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        name, _ = normalize_host(host[1:-1] if bracketed else host, bracketed=bracketed)
    except ImageRefused as error:
        raise ValueError(f"{entry!r}: {error.message}") from None
    return name, int(port_text)


def _is_bare_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_target(target: Target, allow: AllowList, hosts_only: bool) -> bool:
    """Whether the URL's host is allow-listed; raise when the URL may not be fetched at all.

    Called before resolving; `check_addresses` then checks what the name resolved to.
    """
    if allow.allows_host(target):
        return True
    if target.address is not None:
        check_address(target, target.address, allow, hosts_only)
    elif target.host == "localhost" or target.host.endswith(".localhost"):
        # RFC 6761: loopback, whatever a resolver says; refused without asking one.
        check_address(target, _LOOPBACK, allow, hosts_only)
    elif hosts_only and not allow.networks:
        raise ImageRefused(HOST_NOT_ALLOWED, f"{target.display} is not in --allowed-image-hosts")
    return False


def check_address(target: Target, address: IPAddress, allow: AllowList, hosts_only: bool) -> None:
    """Raise ImageRefused unless `address` may be connected to for `target`."""
    if allow.allows_address(address):
        return
    if hosts_only:
        raise ImageRefused(HOST_NOT_ALLOWED, f"{target.display} is not in --allowed-image-hosts")
    if not is_public(unmapped(address)):
        shown = f"{target.display} resolves to {address}, which" if target.address is None else target.display
        raise ImageRefused(
            ADDRESS_NOT_ALLOWED,
            f"{shown} is not a public address (add host:port or a CIDR range to --allowed-image-hosts "
            "to allow it)",
        )


def _bad_url(why: str) -> ImageRefused:
    return ImageRefused(UNSUPPORTED_URL, f"image URL {why}")
