"""The password page and the audit log in Firefox, under the CSP, at phone and desktop widths;
the live channel works under the CSP (the WebSocket to ourselves is allowed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.factories import campaign_json
from tests.helpers import PASSWORD, Api, log_in_firefox

pytestmark = pytest.mark.browser

WIDTHS = (390, 1366)


def test_password_page_and_audit_log_fit_phone_and_desktop(
    firefox, live_server, app, make_user, tmp_path
):
    make_user("boss@webpush-server.dev", role="admin", name="Boss")
    boss = Api(app.test_client())
    boss.login("boss@webpush-server.dev")
    for title in ("Solar lanterns for the night trails of the northern ridge", "Benches"):
        boss.post("/api/funding/campaigns", json=campaign_json(title=title))
    log_in_firefox(firefox, live_server, "boss@webpush-server.dev", PASSWORD)
    # The live channel connects over the WebSocket: connect-src allows ws: to ourselves.
    firefox.wait_until("document.documentElement.dataset.live === 'websocket'", timeout=30)
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    for width in WIDTHS:
        at_css_width(firefox, width)
        for name, path, marker in (
            ("password", "/account/password", "#new_password"),
            ("audit", "/admin/audit", "table"),
        ):
            firefox.navigate(live_server + path)
            firefox.find(marker)
            overflow = firefox.script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways at {width} px"
            firefox.screenshot(shots / f"{name}-{width}.png")
    assert "campaign.create" in firefox.text("table")


def at_css_width(firefox, width: int) -> int:
    """Size the window for a viewport of width CSS pixels; return the width it got.

    Headless Firefox will not make a window narrower than about 490 px, so the phone width
    comes out wider than asked; the layout must still not scroll sideways there.
    """
    firefox.client.set_window_rect(width=width, height=900)
    return firefox.script("return window.innerWidth")
