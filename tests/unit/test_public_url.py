"""PUBLIC_URL: the origin push messages link to (`navigate`), checked at startup."""

from __future__ import annotations

import pytest

from webpush_server.config import ConfigError, public_url, validate_public_url


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://notify.example.org", "https://notify.example.org"),
        ("https://notify.example.org/", "https://notify.example.org"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        (None, None),
        ("", None),
    ],
)
def test_an_origin_is_kept_without_its_trailing_slash(given, kept):
    assert validate_public_url(given) == kept


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("notify.example.org", "absolute http"),
        ("ftp://notify.example.org", "absolute http"),
        ("https://notify.example.org/app", "no path or query"),
        ("https://notify.example.org/?a=1", "no path or query"),
        ("https://user@notify.example.org", "no path or query"),
        ("https://notify.example.org:99999", "is not a URL"),
    ],
)
def test_anything_but_an_origin_stops_the_start_saying_why(given, reason):
    with pytest.raises(ConfigError, match=reason):
        validate_public_url(given)


def test_without_one_links_point_at_the_local_server(monkeypatch):
    monkeypatch.setenv("PORT", "5123")
    assert public_url({"PUBLIC_URL": None}) == "http://127.0.0.1:5123"
    assert public_url({"PUBLIC_URL": "https://n.example.org"}) == "https://n.example.org"
