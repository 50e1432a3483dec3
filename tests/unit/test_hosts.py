"""PUSH_SERVICE_HOSTS parsing and the address checks behind SSRF safety."""

from __future__ import annotations

import re

import pytest

from webpush_server.config import DEFAULT_PUSH_SERVICE_HOSTS
from webpush_server.push.hosts import (
    EndpointRefused,
    HostPolicy,
    canonical_endpoint,
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
        "100.127.255.254",
        "224.0.0.1",
        # IETF protocol assignments, the whole /24 (Python 3.11 calls only a /29 private)
        "192.0.0.1",
        "192.0.0.9",
        "192.0.0.255",
        # 6to4 embeds an IPv4 address: a private one, and even a public one
        "2002:c0a8:0101::1",
        "2002:0808:0808::1",
        "2002::1",
        # NAT64 embeds one too
        "64:ff9b::a00:1",
        "64:ff9b::808:808",
        "64:ff9b:1::a00:1",
        # IPv4-mapped, -compatible and -translated forms of internal addresses
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:100.64.0.1",
        "::ffff:192.0.0.9",
        "::10.0.0.1",
        "::ffff:0:a00:1",
        # Teredo, unique local, link-local with a zone, site-local
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "fc00::1",
        "fdff:ffff::1",
        "fe80::1%eth0",
        "febf::1",
        "fec0::1",
        "198.18.0.1",
        "240.0.0.1",
        "255.255.255.255",
    ],
)
def test_internal_addresses_are_forbidden(address):
    assert is_forbidden_address(address)


@pytest.mark.parametrize(
    "address", ["142.250.74.106", "2a00:1450:4001:82b::200a", "::ffff:142.250.74.106"]
)
def test_public_addresses_are_fine(address):
    assert not is_forbidden_address(address)


@pytest.mark.parametrize(
    ("endpoint", "canonical"),
    [
        # What browsers hand out is already canonical and stays as it is, escapes included.
        (
            "https://fcm.googleapis.com/fcm/send/abc:APA91b",
            "https://fcm.googleapis.com/fcm/send/abc:APA91b",
        ),
        (
            "https://wns2-db5p.notify.windows.com/w/?token=BQY%2bA%3d",
            "https://wns2-db5p.notify.windows.com/w/?token=BQY%2bA%3d",
        ),
        (
            "https://xn--bcher-kva.push.services.mozilla.com/x",
            "https://xn--bcher-kva.push.services.mozilla.com/x",
        ),
        ("http://127.0.0.1:8089/push/1", "http://127.0.0.1:8089/push/1"),
        ("https://[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443/x"),
        # The scheme's default port written out is dropped, as a browser writes the URL.
        ("https://fcm.googleapis.com:443/fcm/send/abc", "https://fcm.googleapis.com/fcm/send/abc"),
        ("http://127.0.0.1:80/push/1", "http://127.0.0.1/push/1"),
        ("https://[2001:db8::1]:443/x", "https://[2001:db8::1]/x"),
        ("https://fcm.googleapis.com:443", "https://fcm.googleapis.com"),
    ],
)
def test_endpoints_are_stored_in_canonical_form(endpoint, canonical):
    assert canonical_endpoint(endpoint) == canonical


def test_the_allow_list_check_returns_the_canonical_endpoint():
    assert (
        DEFAULT.check_endpoint("https://fcm.googleapis.com:443/fcm/send/abc")
        == "https://fcm.googleapis.com/fcm/send/abc"
    )


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        # Non-ASCII is refused, not encoded: the stored text is the key the browser sends back.
        ("https://fcm.googleapis.com/中文", "must be ASCII"),
        ("https://fcm.googleapis.com/fcm/send/é", "must be ASCII"),
        ("https://bücher.push.services.mozilla.com/x", "must be ASCII"),
        ("https://xn--a.push.services.mozilla.com/x", "not valid IDNA"),
        ("https://xn--99999999.push.services.mozilla.com/x", "not valid IDNA"),
        ("https://fcm..googleapis.com/x", "empty label"),
        ("https://.fcm.googleapis.com/x", "empty label"),
        ("https://fcm.googleapis.com./x", "empty label"),
        ("https://fcm_push.googleapis.com/x", "not a valid DNS name"),
        ("https://-fcm.googleapis.com/x", "not a valid DNS name"),
        ("https://fcm.googleapis.com\\@evil.example.org/x", "backslashes"),
        ("https://fcm.googleapis.com/fcm\\send/abc", "backslashes"),
        ("https://fcm.googleapis.com/fcm/send/a%00b", "%00"),
        ("https://fcm.googleapis.com/fcm/send/a%0D%0Ab", "%00"),
        ("https://fcm.googleapis.com/fcm/send/a%7fb", "%00"),
        ("https://fcm.googleapis.com:0443/x", "leading zeros"),
        ("https://fcm.googleapis.com:00443/x", "leading zeros"),
        ("https://fcm.googleapis.com:/x", "leading zeros"),
        ("https://fcm.googleapis.com:0/x", "leading zeros"),
        ("https://fcm.googleapis.com:99999/x", "valid URL"),
        ("https://fcm.googleapis.com:+443/x", "valid URL"),
    ],
)
def test_endpoints_not_in_canonical_form_are_refused(endpoint, reason):
    with pytest.raises(EndpointRefused, match=re.escape(reason)):
        canonical_endpoint(endpoint)
    with pytest.raises(EndpointRefused, match=re.escape(reason)):
        DEFAULT.check_endpoint(endpoint)
