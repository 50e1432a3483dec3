"""The notification settings page in Firefox: change a cell, save, reload, it stays; phone and
desktop widths without sideways scrolling."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, Process, log_in_firefox, process_env, start_web
from webpush_server.devrun import flask_command

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server(app, settings, twilio, tmp_path) -> Iterator[str]:
    """The app served by gunicorn and a worker, SMS through the Twilio stand-in (the phone form).

    The code's SMS goes through the outbox: the worker sends it, as in production.
    """
    twilio.clear()
    sms = {name: str(value) for name, value in twilio.settings().items()}
    url, server = start_web(settings, app.instance_path, tmp_path / "web.log", **sms)
    worker = Process(
        flask_command("jobs", "worker"),
        process_env(settings, app.instance_path, **sms),
        tmp_path / "worker.log",
    )
    yield url
    worker.stop()
    server.stop()


WIDTHS = (390, 1366)


def test_a_changed_cell_stays_after_a_reload(
    firefox, live_server, make_user, login_as, twilio, tmp_path
):
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

    # A phone: the code texted to it (read from the Twilio stand-in) verifies it.
    assert firefox.script("return document.querySelector('#announcement-sms').disabled")
    firefox.type("#phone-number", "010-1234-5678")
    firefox.click("#send-code")
    firefox.wait_until("document.querySelector('#phone-code') !== null")
    (text,) = twilio.wait_for_count(1)
    assert text.to == "+821012345678"
    firefox.type("#phone-code", re.search(r"\d{6}", text.body).group(0))
    firefox.click("#verify-code")
    firefox.wait_until("document.querySelector('#phone-status strong') !== null")
    assert "verified" in firefox.text("#phone-status")
    assert not firefox.script("return document.querySelector('#announcement-sms').disabled")

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
