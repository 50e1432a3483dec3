"""Record staff and admin actions in the audit log, in the transaction of the action itself."""

from __future__ import annotations

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import select

from ..extensions import db
from .models import AuditEvent

ACTIONS = (
    "loan.checkout",
    "loan.checkin",
    "loan.renew",
    "hold.update",
    "hold.cancel",
    "campaign.create",
    "campaign.update",
    "user.role",
    "apikey.create",
    "apikey.revoke",
    "delivery.retry",
    "delivery.discard",
)


def record(action: str, target: str) -> AuditEvent:
    """Add an audit event for the current actor to the session; the caller's commit keeps it.

    Called before the service commits, so the action and its record stand or fall together
    (a refused or rolled-back action leaves no event, a retried one leaves one). Outside a
    request (the CLI) the actor is "cli" and there is no address.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    actor_id, actor, address = None, "cli", None
    if has_request_context():
        address = request.remote_addr
        if current_user.is_authenticated:
            actor_id, actor = current_user.id, current_user.email
        else:
            actor = "anonymous"
    event = AuditEvent(
        actor_id=actor_id, actor=actor, action=action, target=target[:200], address=address
    )
    db.session.add(event)
    return event


def recent(limit: int, before: int | None = None) -> list[AuditEvent]:
    """Return up to limit events, newest first, older than the event id before."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(AuditEvent.id < before)
    return list(db.session.scalars(stmt))
