"""Helpers for the service API tests: keys, bearer requests, a valid body."""

from __future__ import annotations

from webpush_server.service_api.keys import create_key


def make_key(app, name: str = "catalogue", site: str = "all") -> tuple[int, str]:
    """Create an API key; return its id and secret."""
    with app.app_context():
        key, secret = create_key(name, site)
        return key.id, secret


def bearer(secret: str, **headers: str) -> dict:
    """Headers of a service API request."""
    return {"Authorization": f"Bearer {secret}", **headers}


def notify_body(*recipients: dict, **fields) -> dict:
    """A valid POST /api/v1/notifications body."""
    body = {
        "kind": "announcement",
        "recipients": list(recipients) or [{"user_id": 1}],
        "title": "The library closes early today",
        "body": "We close at 16:00 for a staff meeting.",
        "url": "/library/",
    }
    return body | fields
