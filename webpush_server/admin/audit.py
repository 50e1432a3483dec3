"""Record staff and admin actions in the audit log, in the transaction of the action itself."""

from __future__ import annotations

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import insert, select

from ..extensions import db
from ..timeutil import utcnow
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


# A Core INSERT, built once: the ORM's unit of work cost more than the row (it is on the
# check-in's latency path), and nobody reads the event back in the same transaction.
_INSERT = insert(AuditEvent.__table__)


def record(action: str, target: str) -> None:
    """Write an audit event for the current actor in the transaction; the caller's commit keeps it.

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
    db.session.execute(
        _INSERT,
        {
            "at": utcnow(),
            "actor_id": actor_id,
            "actor": actor,
            "action": action,
            "target": target[:200],
            "address": address,
        },
    )


def recent(limit: int, before: int | None = None) -> list[AuditEvent]:
    """Return up to limit events, newest first, older than the event id before."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(AuditEvent.id < before)
    return list(db.session.scalars(stmt))
