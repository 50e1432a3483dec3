"""PUSH_SERVICE_HOSTS parsing and the address checks behind SSRF safety."""

from __future__ import annotations

import pytest

from webpush_server.config import DEFAULT_PUSH_SERVICE_HOSTS
from webpush_server.push.hosts import (
    EndpointRefused,
    HostPolicy,
    check_resolved,
    is_forbidden_address,
)

DEFAULT = HostPolicy.parse(DEFAULT_PUSH_SERVICE_HOSTS)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://wns2-db5p.notify.windows.com/w/?token=abc",
        "https://web.push.apple.com/QGx",
        "https://fcm.googleapis.com:443/fcm/send/abc",
    ],
)
def test_real_push_services_are_allowed(endpoint):
    DEFAULT.check_endpoint(endpoint)


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("http://fcm.googleapis.com/fcm/send/abc", "https"),
        ("https://fcm.googleapis.com:8443/x", "not an allowed"),
        ("https://evil.com/?fcm.googleapis.com", "not an allowed"),
        ("https://fcm.googleapis.com.evil.com/x", "not an allowed"),
        ("https://push.services.mozilla.com.evil.com/x", "not an allowed"),
        ("https://push.apple.com/x", "not an allowed"),  # *.suffix needs a subdomain
        ("https://evilpush.apple.com/x", "not an allowed"),
        ("https://a@fcm.googleapis.com/x", "credentials"),
        ("javascript:alert(1)", "valid URL"),
        ("https://[::1/x", "valid URL"),
    ],
)
def test_everything_else_is_refused(endpoint, reason):
    with pytest.raises(EndpointRefused, match=reason):
        DEFAULT.check_endpoint(endpoint)


def test_listed_loopback_host_port_allows_plain_http_there_only():
    policy = HostPolicy.parse("127.0.0.1:8089")
    policy.check_endpoint("http://127.0.0.1:8089/push/1")
    with pytest.raises(EndpointRefused):
        policy.check_endpoint("http://127.0.0.1:8090/push/1")
    check_resolved(policy, "127.0.0.1", 8089, ["127.0.0.1"])
    with pytest.raises(EndpointRefused):
        check_resolved(policy, "127.0.0.1", 8090, ["127.0.0.1"])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "224.0.0.1",
    ],
)
def test_internal_addresses_are_forbidden(address):
    assert is_forbidden_address(address)


@pytest.mark.parametrize("address", ["142.250.74.106", "2a00:1450:4001:82b::200a"])
def test_public_addresses_are_fine(address):
    assert not is_forbidden_address(address)
