"""Which push service endpoints we accept and connect to (SSRF defence)."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from encodings import idna
from urllib.parse import urlsplit

# Cloud metadata services answer on these even where "private" checks miss them.
_METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}
# Ranges refused whatever the running Python's is_private says (its table grew over 3.11 to
# 3.13). Several carry an IPv4 address inside an IPv6 one, so a gateway on the way would
# deliver the request to that IPv4 address, private or not.
_FORBIDDEN_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT (shared address space)
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "240.0.0.0/4",  # reserved
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b::/96",  # NAT64, well-known prefix
        "64:ff9b:1::/48",  # NAT64, local use
        "2001::/32",  # Teredo (an obfuscated IPv4 inside)
        "2002::/16",  # 6to4 (an IPv4 inside)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
    )
)


class EndpointRefused(ValueError):
    """The endpoint is not one we may talk to; the message says why."""


@dataclass(frozen=True)
class HostPolicy:
    """The parsed PUSH_SERVICE_HOSTS list: exact hosts, host:port pairs and *.suffix patterns."""

    hosts: frozenset[str]
    host_ports: frozenset[tuple[str, int]]
    suffixes: tuple[str, ...]

    @classmethod
    def parse(cls, spec: str) -> HostPolicy:
        """Parse a comma-separated PUSH_SERVICE_HOSTS value."""
        hosts, host_ports, suffixes = set(), set(), []
        for item in (part.strip().lower() for part in spec.split(",")):
            if not item:
                continue
            if item.startswith("*."):
                suffixes.append(item[1:])
            elif item.rsplit(":", 1)[-1].isdigit() and ":" in item:
                host, port = item.rsplit(":", 1)
                host_ports.add((host.strip("[]"), int(port)))
            else:
                hosts.add(item)
        return cls(frozenset(hosts), frozenset(host_ports), tuple(suffixes))

    def is_explicit(self, host: str, port: int) -> bool:
        """Tell whether host:port is listed exactly (a local test service)."""
        return (host.lower(), port) in self.host_ports

    def allows_host(self, host: str, port: int) -> bool:
        """Tell whether the list names this host (and port, where it gives one)."""
        host = host.lower().rstrip(".")
        if self.is_explicit(host, port):
            return True
        if port != 443:
            return False
        return host in self.hosts or any(host.endswith(s) and host != s[1:] for s in self.suffixes)

    def check_endpoint(self, endpoint: str) -> str:
        """Return endpoint in canonical form if it is a push service URL we accept.

        Raises EndpointRefused saying why otherwise (see canonical_endpoint for the form).
        """
        canonical, scheme, host, port = _parse(endpoint)
        if scheme == "http" and not self.is_explicit(host, port):
            # Plain HTTP only for an explicitly listed local test service.
            raise EndpointRefused("must use https")
        if not self.allows_host(host, port):
            raise EndpointRefused(f"host {host} is not an allowed push service")
        return canonical


# One DNS label in ASCII (LDH): letters, digits, inner hyphens; 1 to 63 characters.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)
_PORT = re.compile(r"[1-9][0-9]{0,4}")
# %00-%1F and %7F: a NUL or line break decoded on the far side has no place in an endpoint.
_ENCODED_CONTROL = re.compile(r"%(?:[01][0-9a-f]|7f)", re.IGNORECASE)
_DEFAULT_PORTS = {"https": 443, "http": 80}


def canonical_endpoint(endpoint: str) -> str:
    """Return endpoint in the one form we store and send to; raise EndpointRefused if none.

    That form is what a browser's URL serializer writes (PushSubscription.endpoint): an
    absolute http(s) URL in ASCII, the host IDNA-encoded (xn-- labels), no empty labels, no
    backslashes, no percent-encoded control characters, no credentials or fragment, and a
    port only where it is not the scheme's default, in digits without leading zeros.

    Anything else is refused, not repaired: the stored endpoint is also the key the browser
    sends back (unsubscribe, oldEndpoint), so we keep its exact text. The one rewrite is an
    explicit default port (https://host:443/), dropped as the browser itself would.
    """
    return _parse(endpoint)[0]


def _parse(endpoint: str) -> tuple[str, str, str, int]:
    """Check endpoint's form; return it canonical, with its scheme, host and port."""
    if not endpoint.isascii():
        raise EndpointRefused(
            "must be ASCII: percent-encode the path and IDNA-encode the host (xn--)"
        )
    # The sender writes the path into the request line as it is.
    if any(c <= " " or c == "\x7f" for c in endpoint):
        raise EndpointRefused("must not contain spaces or control characters")
    if "\\" in endpoint:
        # Browsers read a backslash as a slash, Python's parser does not: refuse the doubt.
        raise EndpointRefused("must not contain backslashes")
    if _ENCODED_CONTROL.search(endpoint):
        raise EndpointRefused("must not contain percent-encoded control characters like %00")
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise EndpointRefused("is not a valid URL") from exc
    host = parts.hostname
    if not host:
        raise EndpointRefused("is not a valid URL")
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused("must not contain credentials")
    if parts.fragment:
        raise EndpointRefused("must not contain a fragment")
    if parts.scheme not in _DEFAULT_PORTS:
        raise EndpointRefused("must use https")
    _check_host(host)
    default = _DEFAULT_PORTS[parts.scheme]
    netloc = parts.netloc
    host_text, port_text = netloc, ""
    if ":" in netloc and not netloc.endswith("]"):
        host_text, _, port_text = netloc.rpartition(":")
        if not _PORT.fullmatch(port_text):
            raise EndpointRefused("port must be a number from 1 to 65535 without leading zeros")
    port = int(port_text) if port_text else default
    canonical = endpoint
    if port_text and port == default:
        start = endpoint.index("//") + 2
        canonical = endpoint[:start] + host_text + endpoint[start + len(netloc) :]
    return canonical, parts.scheme, host, port


def _check_host(host: str) -> None:
    if is_ip_literal(host):
        return
    if len(host) > 253:
        raise EndpointRefused("host is longer than 253 characters")
    for label in host.split("."):
        if not label:
            raise EndpointRefused(f"host {host} has an empty label")
        if not _LABEL.fullmatch(label):
            raise EndpointRefused(f"host {host} is not a valid DNS name")
        if label.lower().startswith("xn--") and not _is_a_label(label):
            raise EndpointRefused(f"host {host} is not valid IDNA")


def _is_a_label(label: str) -> bool:
    """Tell whether an xn-- label is the IDNA encoding of a name (it decodes and round-trips)."""
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
        return idna.ToASCII(decoded).decode("ascii").lower() == label.lower()
    except UnicodeError:
        return False


def is_forbidden_address(address: str) -> bool:
    """Tell whether connecting to address could reach something internal."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    # ::ffff:a.b.c.d is the IPv4 address itself to the kernel: judge that one.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip in _METADATA_ADDRESSES
        or any(ip in net for net in _FORBIDDEN_NETWORKS if net.version == ip.version)
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_resolved(policy: HostPolicy, host: str, port: int, addresses: list[str]) -> None:
    """Raise EndpointRefused when a resolved address is internal and host:port is not listed."""
    if policy.is_explicit(host, port):
        return
    for address in addresses:
        if is_forbidden_address(address):
            raise EndpointRefused(f"{host} resolves to a forbidden address {address}")


def is_ip_literal(host: str) -> bool:
    """Tell whether host is an IP address rather than a name."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host.strip("[]"))
    except OSError:
        return False
    return True
