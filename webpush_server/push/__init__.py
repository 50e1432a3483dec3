"""Web Push: subscriptions, VAPID and the sender. Knows nothing of books or coupons."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app

from ..config import ConfigError
from .hosts import HostPolicy
from .vapid import VapidSigner, key_path, load_private_key


def init_app(app: Flask) -> None:
    """Parse the push settings once, failing early on bad ones; add the API and `flask vapid`."""
    from . import api, cli

    app.extensions["push_hosts"] = HostPolicy.parse(app.config["PUSH_SERVICE_HOSTS"])
    value = app.config.get("VAPID_PRIVATE_KEY")
    if value:
        try:
            load_private_key(value)
        except ValueError as exc:
            raise ConfigError(f"VAPID_PRIVATE_KEY is not a usable key: {exc}") from exc
    app.register_blueprint(api.bp)
    app.register_blueprint(cli.bp)


def host_policy() -> HostPolicy:
    """Return the app's PUSH_SERVICE_HOSTS policy."""
    return current_app.extensions["push_hosts"]


def signer() -> VapidSigner:
    """Return the app's VAPID signer, loading the key on first use."""
    cached = current_app.extensions.get("vapid_signer")
    if cached is None:
        value = current_app.config.get("VAPID_PRIVATE_KEY")
        if not value:
            path = key_path(current_app.instance_path)
            if not path.exists():
                raise ConfigError(
                    f"no VAPID key: set VAPID_PRIVATE_KEY or run `flask --app wsgi vapid "
                    f"generate` (writes {Path(path).name} in instance/)"
                )
            value = path.read_text()
        cached = VapidSigner(load_private_key(value), current_app.config["VAPID_SUBJECT"])
        current_app.extensions["vapid_signer"] = cached
    return cached
