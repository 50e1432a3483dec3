"""Installable: the service worker serves the offline page once the server is gone, and the
notifications page explains the Home Screen to iOS Safari before it offers push."""

from __future__ import annotations

import pytest

from tests.helpers import start_web

pytestmark = pytest.mark.browser


def test_offline_page_is_served_when_the_network_is_gone(firefox, app, settings, tmp_path):
    url, server = start_web(settings, app.instance_path, tmp_path / "web.log")
    try:
        # A guest's first visit installs the service worker, which caches the offline page.
        firefox.navigate(url + "/funding/")
        firefox.wait_until(
            "navigator.serviceWorker.getRegistration().then((r) => !!(r && r.active))"
            " && caches.open('offline-v1').then((c) => c.match('/offline')).then((r) => !!r)",
            timeout=30,
        )
        firefox.navigate(url + "/funding/")
        firefox.wait_until("!!navigator.serviceWorker.controller")
    finally:
        server.stop()
    firefox.navigate(url + "/library/")
    firefox.wait_until("document.querySelector('h1')?.textContent === 'You are offline'")
    # Its stylesheet comes from the cache too: the page is styled, not bare HTML.
    assert firefox.script(
        "return getComputedStyle(document.querySelector('.card')).borderRadius"
    ) not in ("", "0px")
    assert firefox.find("a.btn-primary").get_attribute("href").endswith("/")


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


@pytest.mark.parametrize("user_agent", [IPHONE, None])
def test_ios_safari_is_told_to_add_to_home_screen_first(
    push_service, live_server, login_as, user_agent
):
    from tests.browser.firefox import Firefox, require_firefox
    from tests.helpers import PASSWORD, log_in_firefox

    require_firefox()
    login_as("ios@webpush-server.dev")
    prefs = {"general.useragent.override": user_agent} if user_agent else {}
    with Firefox(push_server_url=push_service.websocket_url, prefs=prefs) as browser:
        log_in_firefox(browser, live_server, "ios@webpush-server.dev", PASSWORD)
        browser.navigate(live_server + "/notifications")
        browser.wait_until("document.querySelector('#push-status').dataset.state !== 'checking'")
        shown = browser.script("return !document.querySelector('#ios-install').hidden")
        assert shown is (user_agent is not None)
        if shown:
            assert "Add to Home Screen" in browser.text("#ios-install")
            # The steps come before the push card, so they are read first.
            assert browser.script(
                "return !!(document.querySelector('#ios-install').compareDocumentPosition("
                "document.querySelector('#push-toggle')) & Node.DOCUMENT_POSITION_FOLLOWING)"
            )
