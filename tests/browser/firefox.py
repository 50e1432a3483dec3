"""Headless Firefox ESR driven over Marionette (no geckodriver), its push service redirected."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # marionette-driver imports mozinfo, which calls the deprecated distro.linux_distribution()
    # at import time; under filterwarnings=error that would break collection.
    warnings.simplefilter("ignore", DeprecationWarning)
    from marionette_driver import errors
    from marionette_driver.marionette import Marionette, WebElement
    from marionette_driver.wait import Wait

STARTUP_TIMEOUT = 60.0

# Prefs for a quiet, offline, test-friendly browser. Firefox has no network here, so anything
# that phones home would only add noise and delays.
BASE_PREFS: dict[str, Any] = {
    "marionette.port": 0,
    "remote.prefs.recommended": True,
    # Web Push and notifications.
    "dom.push.enabled": True,
    "dom.push.connection.enabled": True,
    "dom.push.testing.allowInsecureServerURL": True,
    "dom.serviceWorkers.enabled": True,
    "dom.serviceWorkers.testing.enabled": True,
    "permissions.default.desktop-notification": 1,
    # Headless Firefox 153 shows nothing through the system backend, so use the built-in one.
    "alerts.useSystemBackend": False,
    "dom.webnotifications.enabled": True,
    # First-run pages and prompts.
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "startup.homepage_welcome_url": "about:blank",
    "startup.homepage_welcome_url.additional": "",
    "browser.aboutwelcome.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.sessionstore.resume_from_crash": False,
    "browser.tabs.warnOnClose": False,
    "datareporting.policy.dataSubmissionPolicyBypassNotification": True,
    "toolkit.startup.max_resumed_crashes": -1,
    # Telemetry, updates and background network.
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.server": "",
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "app.normandy.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.autoDisableScopes": 0,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.search.update": False,
    "browser.region.network.url": "",
    "browser.region.update.enabled": False,
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "network.proxy.type": 0,
    "browser.ping-centre.telemetry": False,
    "extensions.pocket.enabled": False,
}


class FirefoxError(RuntimeError):
    """Firefox failed to start, or a script in the page threw."""


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def firefox_available() -> str | None:
    """Path of firefox-esr (or firefox) on PATH, or None."""
    return shutil.which("firefox-esr") or shutil.which("firefox")


def require_firefox() -> str:
    """Return the Firefox binary; without one, fail under CI=true and skip otherwise."""
    binary = firefox_available()
    if binary is None:
        message = "Firefox ESR not found on PATH (apt-get install firefox-esr)"
        if _ci():
            # A browser suite that silently skips in CI proves nothing.
            pytest.fail(f"{message}; browser tests must run in CI", pytrace=False)
        pytest.skip(message)
    return binary


def _pref_line(name: str, value: Any) -> str:
    return f"user_pref({json.dumps(name)}, {json.dumps(value)});\n"


class Firefox:
    """A headless Firefox ESR in a throwaway profile, with a Marionette session in `client`."""

    def __init__(
        self,
        *,
        push_server_url: str | None = None,
        prefs: dict[str, Any] | None = None,
        binary: str | None = None,
    ) -> None:
        self.push_server_url = push_server_url
        self.prefs = dict(prefs or {})
        self.binary = binary
        self.profile: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._client: Marionette | None = None
        self._log_path: Path | None = None

    @property
    def client(self) -> Marionette:
        """The Marionette session."""
        if self._client is None:
            raise FirefoxError("Firefox is not started")
        return self._client

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Firefox:
        """Launch Firefox with a fresh profile and open a Marionette session; return self."""
        binary = self.binary or require_firefox()
        self.profile = Path(tempfile.mkdtemp(prefix="webpush-firefox-"))
        prefs = dict(BASE_PREFS)
        if self.push_server_url:
            prefs["dom.push.serverURL"] = self.push_server_url
        prefs.update(self.prefs)
        (self.profile / "user.js").write_text("".join(_pref_line(k, v) for k, v in prefs.items()))
        # The log lives beside the profile so it survives until stop() for error messages.
        fd, log_name = tempfile.mkstemp(prefix="webpush-firefox-", suffix=".log")
        self._log_path = Path(log_name)
        env = {
            **os.environ,
            "MOZ_HEADLESS": "1",
            "MOZ_CRASHREPORTER_DISABLE": "1",
            "MOZ_CRASHREPORTER_SHUTDOWN": "1",
            "MOZ_DISABLE_AUTO_SAFE_MODE": "1",
            # Keep Firefox from touching the real user's home (we run as root).
            "HOME": str(self.profile),
            "XDG_CACHE_HOME": str(self.profile / "cache"),
        }
        try:
            with os.fdopen(fd, "wb") as log:
                # Own session: stop() can kill the whole group, content processes included.
                # System access lets a test reach the notification (alert) window in chrome
                # context and click it, as a person would.
                args = [
                    "-headless",
                    "-marionette",
                    "-remote-allow-system-access",
                    "-no-remote",
                    "-profile",
                    str(self.profile),
                ]
                self.process = subprocess.Popen(
                    [binary, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.profile,  # nothing it writes lands in the checkout
                    start_new_session=True,
                )
            port = self._wait_for_port()
            self._client = Marionette(host="127.0.0.1", port=port, socket_timeout=STARTUP_TIMEOUT)
            self._client.start_session(timeout=STARTUP_TIMEOUT)
        except BaseException:
            log_tail = self._log_tail()
            self.stop()
            raise FirefoxError(f"Firefox did not start; log tail:\n{log_tail}") from None
        return self

    def _wait_for_port(self) -> int:
        """Read the port Marionette chose (marionette.port=0) once Firefox writes it."""
        assert self.profile is not None and self.process is not None
        port_file = self.profile / "MarionetteActivePort"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        # A bounded poll: Firefox offers no other signal that the file is written.
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise FirefoxError(f"Firefox exited with {self.process.returncode}")
            try:
                text = port_file.read_text().strip()
            except FileNotFoundError:
                text = ""
            if text.isdigit() and int(text) > 0:
                return int(text)
            time.sleep(0.05)
        raise FirefoxError(f"no {port_file.name} after {STARTUP_TIMEOUT} s")

    def _log_tail(self, lines: int = 40) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def log(self) -> str:
        """Firefox's stdout/stderr so far."""
        return self._log_tail(10_000)

    def stop(self) -> None:
        """End the session, kill Firefox's process group and remove the profile."""
        if self._client is not None:
            try:
                self._client.delete_session()
            except Exception:  # the browser may already be gone; cleanup must go on
                pass
            self._client = None
        process, self.process = self.process, None
        if process is not None:
            self._kill_group(process)
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    @staticmethod
    def _kill_group(process: subprocess.Popen[bytes]) -> None:
        pgid = process.pid  # start_new_session made it the group leader
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        # Content and GPU processes may outlive the parent briefly; none may remain.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)

    def __enter__(self) -> Firefox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- page interaction --------------------------------------------------------------------

    def navigate(self, url: str) -> None:
        """Load url in the current tab and wait for it to load."""
        self.client.navigate(url)

    @property
    def url(self) -> str:
        """The current page's URL."""
        return str(self.client.get_url())

    def find(self, css: str) -> WebElement:
        """The first element matching a CSS selector."""
        return self.client.find_element("css selector", css)

    def find_all(self, css: str) -> list[WebElement]:
        """Every element matching a CSS selector."""
        return list(self.client.find_elements("css selector", css))

    def click(self, css: str) -> None:
        """Click the first element matching css."""
        self.find(css).click()

    def type(self, css: str, text: str, *, clear: bool = True) -> None:
        """Type text into the first element matching css, clearing it first."""
        element = self.find(css)
        if clear:
            element.clear()
        element.send_keys(text)

    def text(self, css: str) -> str:
        """Visible text of the first element matching css."""
        return str(self.find(css).text)

    def script(self, js: str, *args: Any, timeout: float = 10) -> Any:
        """Run js as the body of an async function in the page (may await); return its result."""
        wrapper = (
            "const done = arguments[arguments.length - 1];\n"
            "const args = Array.prototype.slice.call(arguments, 0, -1);\n"
            "(async function () {\n" + js + "\n}).apply(window, args).then(\n"
            "  (value) => done({ok: true, value: value === undefined ? null : value}),\n"
            "  (error) => done({ok: false, error: String(error) +"
            " (error && error.stack ? '\\n' + error.stack : '')}));"
        )
        result = self.client.execute_async_script(
            wrapper, script_args=args, sandbox=None, script_timeout=int(timeout * 1000)
        )
        if not isinstance(result, dict) or not result.get("ok"):
            error = result.get("error") if isinstance(result, dict) else result
            raise FirefoxError(f"script failed in {self.url}: {error}")
        return result["value"]

    def wait_until(self, js_condition: str, timeout: float = 15) -> Any:
        """Wait until a JS expression (may use await) is truthy in the page; return its value."""
        last_error: list[str] = []
        body = (
            "try { return {value: await (" + js_condition + ")}; }\n"
            "catch (error) { return {error: String(error)}; }"
        )

        def check(_client: Marionette) -> Any:
            try:
                result = self.script(body, timeout=max(timeout, 1))
            except errors.JavascriptException as exc:
                # Navigation can tear the page down under the script; try again.
                last_error[:] = [str(exc)]
                return None
            if "error" in result:
                last_error[:] = [result["error"]]
                return None
            return result.get("value")

        try:
            return Wait(
                self.client,
                timeout=timeout,
                interval=0.1,
                ignored_exceptions=(errors.NoSuchWindowException, errors.JavascriptException),
            ).until(check)
        except errors.TimeoutException:
            detail = f"; last error: {last_error[0]}" if last_error else ""
            raise AssertionError(
                f"condition {js_condition!r} not true within {timeout} s at {self.url}{detail}"
            ) from None

    # -- push helpers ------------------------------------------------------------------------

    def notifications(self) -> list[dict[str, Any]]:
        """Notifications the page's service worker registration is showing."""
        return list(self.script(f"return await ({_NOTIFICATIONS_FN})();", timeout=10))

    def wait_for_notification(self, title: str, timeout: float = 15) -> dict[str, Any]:
        """Wait until a notification with this title is shown; return it."""
        try:
            found = self.wait_until(
                f"({_NOTIFICATIONS_FN})().then("
                f"(list) => list.find((n) => n.title === {json.dumps(title)}) || null)",
                timeout=timeout,
            )
        except AssertionError:
            shown = [n["title"] for n in self.notifications()]
            raise AssertionError(
                f"no notification titled {title!r} within {timeout} s; showing: {shown}"
            ) from None
        return dict(found)

    def click_notification(self, title: str, timeout: float = 15) -> None:
        """Click the shown notification with this title, as a person would.

        With alerts.useSystemBackend=false Firefox shows notifications in its own alert
        window; clicking its box fires the service worker's `notificationclick`.
        """
        client = self.client
        content_window = client.current_window_handle
        client.set_context(client.CONTEXT_CHROME)
        try:

            def alert_box(_client: Marionette) -> Any:
                for handle in client.chrome_window_handles:
                    try:
                        client.switch_to_window(handle, focus=False)
                        if client.execute_script(
                            "const label = document.getElementById('alertTitleLabel');"
                            "return !!label && label.value === arguments[0];",
                            script_args=[title],
                        ):
                            return client.find_element("id", "alertBox")
                    except errors.NoSuchWindowException:
                        continue  # an alert window closed since it was listed
                return None

            box = Wait(client, timeout=timeout, interval=0.1).until(
                alert_box, message=f"no notification window titled {title!r}"
            )
            box.click()
        finally:
            client.set_context(client.CONTEXT_CONTENT)
            client.switch_to_window(content_window)

    def switch_to_window_showing(self, url: str, timeout: float = 15) -> None:
        """Wait for a tab or window showing url (e.g. one a service worker opened); switch to it."""
        client = self.client

        def showing(_client: Marionette) -> str | None:
            for handle in client.window_handles:
                client.switch_to_window(handle)
                if client.get_url() == url:
                    return handle
            return None

        Wait(client, timeout=timeout, interval=0.2).until(
            showing, message=f"no window showing {url}"
        )

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        """Save a PNG of the current page; return its path."""
        target = Path(path)
        target.write_bytes(self.client.screenshot(format="binary"))
        return target


# An async arrow function listing the notifications of the page's service worker registration.
_NOTIFICATIONS_FN = """async () => {
  // getRegistration, not ready: ready never settles on a page without a service worker.
  const registration = await navigator.serviceWorker.getRegistration();
  if (!registration) return [];
  return (await registration.getNotifications()).map((n) => ({
    title: n.title, body: n.body, tag: n.tag, data: n.data === undefined ? null : n.data,
    icon: n.icon,
  }));
}"""
