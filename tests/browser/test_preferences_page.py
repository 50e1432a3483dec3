"""The notification settings page in Firefox: change a cell, save, reload, it stays; phone and
desktop widths without sideways scrolling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, log_in_firefox

pytestmark = pytest.mark.browser

WIDTHS = (390, 1366)


def test_a_changed_cell_stays_after_a_reload(firefox, live_server, make_user, login_as, tmp_path):
    make_user("reader@webpush-server.dev", name="Rita Reader")
    log_in_firefox(firefox, live_server, "reader@webpush-server.dev", PASSWORD)
    firefox.navigate(live_server + "/settings/notifications")
    cell = "#announcement-email"
    assert firefox.script(f"return document.querySelector('{cell}').checked") is False
    firefox.click(cell)
    firefox.click("#save-preferences")
    firefox.wait_until("document.querySelector('.flash') !== null")
    firefox.navigate(live_server + "/settings/notifications")
    assert firefox.script(f"return document.querySelector('{cell}').checked") is True
    # The JSON API agrees: the page and the API are one set of preferences.
    api = login_as("reader@webpush-server.dev", server=live_server)
    prefs = api.get(live_server + "/api/preferences", timeout=10).json()
    assert prefs["kinds"]["announcement"]["email"] is True
    assert "Cannot be turned off entirely" in firefox.text("#kind-hold_expired")

    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    for width in WIDTHS:
        firefox.client.set_window_rect(width=width, height=900)
        firefox.navigate(live_server + "/settings/notifications")
        firefox.find("#preference-matrix")
        overflow = firefox.script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the settings page scrolls sideways at {width} px"
        firefox.screenshot(shots / f"settings-{width}.png")
