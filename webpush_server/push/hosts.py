"""Which push service endpoints we accept and connect to (SSRF defence)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

# Cloud metadata services answer on these even where "private" checks miss them.
_METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}


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

    def check_endpoint(self, endpoint: str) -> None:
        """Raise EndpointRefused unless endpoint is a push service URL we accept."""
        # The sender writes the path into the request line as it is.
        if any(c <= " " or c == "\x7f" for c in endpoint):
            raise EndpointRefused("must not contain spaces or control characters")
        try:
            parts = urlsplit(endpoint)
            port = parts.port
        except ValueError as exc:
            raise EndpointRefused("is not a valid URL") from exc
        host = parts.hostname
        if not host:
            raise EndpointRefused("is not a valid URL")
        if parts.username is not None or parts.password is not None:
            raise EndpointRefused("must not contain credentials")
        if parts.fragment:
            raise EndpointRefused("must not contain a fragment")
        if parts.scheme == "https":
            port = port or 443
        elif parts.scheme == "http":
            port = port or 80
            # Plain HTTP only for an explicitly listed local test service.
            if not self.is_explicit(host, port):
                raise EndpointRefused("must use https")
        else:
            raise EndpointRefused("must use https")
        if not self.allows_host(host, port):
            raise EndpointRefused(f"host {host} is not an allowed push service")


def is_forbidden_address(address: str) -> bool:
    """Tell whether connecting to address could reach something internal."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip in _METADATA_ADDRESSES
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"))
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
