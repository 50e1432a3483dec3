"""A live worker's hold on its claims: renewed while it sends, so a dead one is seen soon.

A worker renews claimed_at on its still-sending rows every third of
DELIVERY_CLAIM_TIMEOUT_SECONDS. The sweeper takes back claims not renewed within the
timeout, so a SIGKILLed worker's deliveries go back within about the timeout plus a sweep,
however long its batch would have taken, and a slow batch of a live worker is never taken.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from flask import Flask

from ..extensions import db
from ..timeutil import utcnow
from .claim import renew

log = logging.getLogger(__name__)


class Lease:
    """Renew claim tokens from a background thread while the block runs."""

    def __init__(self, app: Flask, tokens: set[str], every: float) -> None:
        self._app = app
        self._tokens = tokens
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claim-lease", daemon=True)

    def __enter__(self) -> Lease:
        if self._tokens:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        # Its own app context, so its own session and connection: the job's transaction is
        # never touched from here.
        with self._app.app_context():
            while not self._stop.wait(self._every):
                try:
                    renew(self._tokens, utcnow())
                    db.session.commit()
                except Exception:
                    db.session.rollback()
                    log.warning("could not renew a claim; retrying", exc_info=True)
            db.session.remove()
