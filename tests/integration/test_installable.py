"""The manifest makes the app installable: id, shortcuts, screenshots that exist at their size."""

from __future__ import annotations

import struct
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "static"


def png_size(path: Path) -> str:
    """Read a PNG's width x height from its IHDR chunk."""
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return f"{width}x{height}"


def test_manifest_has_id_shortcuts_and_real_screenshots(client):
    # Files are streamed: close each response, or its open file outlives the test.
    with client.get("/manifest.webmanifest") as response:
        assert response.status_code == 200
        assert response.mimetype == "application/manifest+json"
        manifest = response.get_json(force=True)
    assert manifest["id"] == "/" and manifest["display"] == "standalone"
    shortcuts = {s["name"]: s["url"] for s in manifest["shortcuts"]}
    assert shortcuts == {
        "My holds": "/library/holds",
        "My coupons": "/funding/coupons",
        "Notifications": "/notifications",
    }
    for shortcut in manifest["shortcuts"]:
        with client.get(shortcut["icons"][0]["src"]) as icon:
            assert icon.status_code == 200
    factors = set()
    for shot in manifest["screenshots"]:
        path = STATIC / shot["src"].removeprefix("/static/")
        assert png_size(path) == shot["sizes"], shot["src"]
        assert shot["label"]
        factors.add(shot["form_factor"])
    assert factors == {"narrow", "wide"}


def test_offline_page_carries_no_session(client, login_as):
    api = login_as("offline@webpush-server.dev")
    page = api.client.get("/offline")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "You are offline" in html
    # The service worker caches it for everyone: no name, no CSRF token, no scripts.
    assert "offline@webpush-server.dev" not in html and "csrf" not in html.lower()
    assert "<script" not in html
