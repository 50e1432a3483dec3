"""Funding services: campaigns, pledges, follows, coupons, and closing at the deadline.

Each function that changes rows commits once, at its end; the jobs call the same functions
one campaign or one chunk at a time, so a crash loses at most an uncommitted chunk.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext, lazy_gettext
from sqlalchemy import (
    BigInteger,
    Select,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from ..admin import audit
from ..database import (
    UTCDateTime,
    get_or_refuse,
    insert_ignoring_conflicts,
    keyset_ids,
    rows_changed,
)
from ..errors import Conflict, Invalid, InvalidFields, NotFound, whole_number
from ..extensions import db
from ..notifications.record import record
from ..timeutil import app_zone, utcnow
from .events import (
    CampaignClosed,
    CampaignDeadlineNeared,
    CampaignFailed,
    CampaignSucceeded,
    CouponsExpiring,
)
from .models import Campaign, Coupon, Follow, Pledge
from .timeutil import coupon_expires_at, start_of_day

MAX_AMOUNT = 10**12
MAX_DEADLINE_DAYS = 100 * 365
CHUNK = 500
# 16 symbols of a 32-letter alphabet without look-alikes (0/O, 1/I): 80 random bits.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


# -- input -----------------------------------------------------------------------------------


# What the admin form calls each field: messages name fields the way the form labels them.
# Lazy: each renders in the language of the request that reads it.
CAMPAIGN_LABELS = {
    "title": lazy_gettext("Title"),
    "description": lazy_gettext("Description"),
    "goal_amount": lazy_gettext("Goal (won)"),
    "deadline": lazy_gettext("Deadline"),
    "coupon_discount": lazy_gettext("Coupon discount (%)"),
    "coupon_valid_days": lazy_gettext("Coupon valid for (days)"),
}
PLEDGE_LABEL = lazy_gettext("Pledge (won)")


def parse_deadline(value: object, zone: ZoneInfo | None = None) -> datetime:
    """Parse an ISO 8601 deadline (in UTC); a value without offset is read in zone when given.

    A deadline is at most MAX_DEADLINE_DAYS ahead, so the coupon expiry and reminder times
    computed from it stay inside the calendar.
    """
    label = CAMPAIGN_LABELS["deadline"]
    if value is None or not str(value).strip():
        raise Invalid("deadline", gettext("%(label)s is required.", label=label))
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            "deadline", gettext("%(label)s must be an ISO 8601 date and time.", label=label)
        ) from None
    if parsed.tzinfo is None:
        if zone is None:
            raise Invalid(
                "deadline", gettext("%(label)s needs a UTC offset, e.g. +09:00.", label=label)
            )
        parsed = parsed.replace(tzinfo=zone)
    try:
        # 9999-12-31T23:59-12:00 is a valid local time whose UTC instant is in year 10000.
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise Invalid(
            "deadline", gettext("%(label)s is outside the calendar.", label=label)
        ) from None
    if parsed > utcnow() + timedelta(days=MAX_DEADLINE_DAYS):
        raise Invalid(
            "deadline",
            gettext(
                "%(label)s must be within %(years)d years.",
                label=label,
                years=MAX_DEADLINE_DAYS // 365,
            ),
        )
    return parsed


def _title(value: object) -> str:
    title = str(value or "").strip()
    if not title:
        raise Invalid("title", gettext("%(label)s is required.", label=CAMPAIGN_LABELS["title"]))
    if len(title) > 200:
        raise Invalid(
            "title",
            gettext(
                "%(label)s must be at most %(limit)s characters.",
                label=CAMPAIGN_LABELS["title"],
                limit="200",
            ),
        )
    return title


def _description(value: object) -> str:
    description = str(value or "").strip()
    if len(description) > 10_000:
        raise Invalid(
            "description",
            gettext(
                "%(label)s must be at most %(limit)s characters.",
                label=CAMPAIGN_LABELS["description"],
                limit="10,000",
            ),
        )
    return description


def _future_deadline(zone: ZoneInfo | None, now: datetime | None):
    def parse(value: object) -> datetime:
        deadline = parse_deadline(value, zone)
        if deadline <= (now or utcnow()):
            raise Invalid(
                "deadline",
                gettext("%(label)s must be in the future.", label=CAMPAIGN_LABELS["deadline"]),
            )
        return deadline

    return parse


def _number(field: str, low: int, high: int):
    return lambda value: whole_number(value, field, low, high, label=CAMPAIGN_LABELS[field])


def parse_campaign(data: object, zone: ZoneInfo | None = None, now: datetime | None = None) -> dict:
    """Validate campaign fields from the API or the admin form; return model values.

    Every field is checked, and all that are wrong are refused together (InvalidFields), so
    a form can show each error beside its field at once.
    """
    if not isinstance(data, dict):
        raise Invalid(None, gettext("Send a JSON object."))
    parsers = {
        "title": _title,
        "description": _description,
        "goal_amount": _number("goal_amount", 1, MAX_AMOUNT),
        "deadline": _future_deadline(zone, now),
        "coupon_discount": _number("coupon_discount", 1, 100),
        "coupon_valid_days": _number("coupon_valid_days", 1, 3650),
    }
    fields: dict = {}
    errors: dict[str, str] = {}
    for name, parse in parsers.items():
        try:
            fields[name] = parse(data.get(name))
        except Invalid as error:
            errors[name] = error.message
    if errors:
        raise InvalidFields(errors)
    return fields


# -- campaigns -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignView:
    """A campaign with its pledge totals, for pages and the API."""

    campaign: Campaign
    pledged_amount: int
    backers: int

    def to_json(self) -> dict:
        """Return the API shape."""
        c = self.campaign
        return {
            "id": c.id,
            "title": c.title,
            "description": c.description,
            "goal_amount": c.goal_amount,
            "pledged_amount": self.pledged_amount,
            "backers": self.backers,
            "deadline": c.deadline.isoformat(timespec="seconds"),
            "status": c.status,
            "coupon_discount": c.coupon_discount,
            "coupon_valid_days": c.coupon_valid_days,
        }


def _totals():
    return (
        select(
            Pledge.campaign_id,
            func.sum(Pledge.amount).label("pledged"),
            func.count(func.distinct(Pledge.user_id)).label("backers"),
        )
        .group_by(Pledge.campaign_id)
        .subquery()
    )


def list_campaigns() -> list[CampaignView]:
    """Return every campaign with totals: open ones first, by deadline."""
    totals = _totals()
    rows = db.session.execute(
        select(Campaign, totals.c.pledged, totals.c.backers)
        .outerjoin(totals, totals.c.campaign_id == Campaign.id)
        .order_by(case((Campaign.status == "open", 0), else_=1), Campaign.deadline, Campaign.id)
    ).all()
    return [CampaignView(c, int(p or 0), int(b or 0)) for c, p, b in rows]


def get_campaign(campaign_id: int) -> CampaignView:
    """Return one campaign with totals, or refuse (NotFound)."""
    campaign = get_or_refuse(Campaign, campaign_id)
    pledged, backers = db.session.execute(
        select(
            func.coalesce(func.sum(Pledge.amount), 0), func.count(func.distinct(Pledge.user_id))
        ).where(Pledge.campaign_id == campaign_id)
    ).one()
    return CampaignView(campaign, int(pledged), int(backers))


def create_campaign(fields: dict, created_by: int, now: datetime | None = None) -> int:
    """Create an open campaign from parse_campaign() fields; return its id."""
    if fields["deadline"] <= (now or utcnow()):
        raise Invalid(
            "deadline",
            gettext("%(label)s must be in the future.", label=CAMPAIGN_LABELS["deadline"]),
        )
    campaign = Campaign(status="open", created_by=created_by, **fields)
    db.session.add(campaign)
    db.session.flush()
    audit.record("campaign.create", f"campaign {campaign.id}: {campaign.title}")
    db.session.commit()
    return campaign.id


CLOSED_MESSAGE = lazy_gettext(
    "This campaign has closed, so it cannot be edited: its result and its backers' coupons "
    "stand as they were at the deadline."
)


def ensure_open(campaign_id: int) -> None:
    """Refuse (Conflict closed) to change a closed campaign; NotFound if there is none.

    Checked before the fields: a closed campaign's deadline is past, and "closed" is the
    real reason it cannot be saved.
    """
    if get_campaign(campaign_id).campaign.status != "open":
        raise Conflict("campaign_id", str(CLOSED_MESSAGE), "closed")


def update_campaign(campaign_id: int, fields: dict, now: datetime | None = None) -> None:
    """Edit an open campaign; a closed one is history and stays as it closed."""
    ensure_open(campaign_id)
    if fields["deadline"] <= (now or utcnow()):
        raise Invalid(
            "deadline",
            gettext("%(label)s must be in the future.", label=CAMPAIGN_LABELS["deadline"]),
        )
    # Conditional on status: the close job may be closing it right now.
    count = rows_changed(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == "open")
        .values(**fields)
        .execution_options(synchronize_session=False)
    )
    if not count:
        get_campaign(campaign_id)  # 404 when it does not exist
        raise Conflict("campaign_id", str(CLOSED_MESSAGE), "closed")
    audit.record("campaign.update", f"campaign {campaign_id}: {fields.get('title', '')}")
    db.session.commit()


# -- pledges and follows ---------------------------------------------------------------------


def _lock_open_campaign(campaign_id: int, now: datetime) -> Campaign:
    # FOR UPDATE serializes a pledge with the close job on PostgreSQL: the close either sees
    # this pledge or this pledge sees the campaign closed. SQLite has one writer anyway.
    campaign = db.session.scalars(
        select(Campaign).where(Campaign.id == campaign_id).with_for_update()
    ).one_or_none()
    if campaign is None:
        raise NotFound("campaign_id", gettext("No such campaign."))
    if campaign.status != "open" or campaign.deadline <= now:
        raise Conflict("campaign_id", gettext("This campaign no longer takes pledges."), "closed")
    return campaign


def pledge(campaign_id: int, user_id: int, amount: object, now: datetime | None = None) -> int:
    """Pledge amount won to an open campaign; return the pledge id."""
    amount = whole_number(amount, "amount", 1, MAX_AMOUNT, label=PLEDGE_LABEL)
    now = now or utcnow()
    _lock_open_campaign(campaign_id, now)
    # Insert only while still open and before the deadline, in one statement, so a pledge
    # racing the close on SQLite cannot land after the campaign was counted.
    still_open = exists().where(
        Campaign.id == campaign_id, Campaign.status == "open", Campaign.deadline > now
    )
    pledge_id = db.session.scalar(
        insert(Pledge)
        .from_select(
            ["campaign_id", "user_id", "amount", "created_at"],
            select(
                literal(campaign_id),
                literal(user_id),
                literal(amount, BigInteger()),
                literal(now, UTCDateTime()),
            ).where(still_open),
        )
        .returning(Pledge.id)
    )
    if pledge_id is None:
        db.session.rollback()
        raise Conflict("campaign_id", gettext("This campaign no longer takes pledges."), "closed")
    db.session.commit()
    return pledge_id


def list_pledges(user_id: int) -> list[tuple[Pledge, Campaign]]:
    """Return the user's pledges with their campaigns, newest first."""
    return list(
        db.session.execute(
            select(Pledge, Campaign)
            .join(Campaign, Campaign.id == Pledge.campaign_id)
            .where(Pledge.user_id == user_id)
            .order_by(Pledge.id.desc())
        )
    )


def follow(campaign_id: int, user_id: int) -> None:
    """Follow a campaign (idempotent)."""
    get_campaign(campaign_id)
    db.session.execute(
        insert_ignoring_conflicts(Follow.__table__, ["campaign_id", "user_id"]),
        {"campaign_id": campaign_id, "user_id": user_id, "created_at": utcnow()},
    )
    db.session.commit()


def unfollow(campaign_id: int, user_id: int) -> None:
    """Stop following a campaign (idempotent)."""
    get_campaign(campaign_id)
    db.session.execute(
        delete(Follow).where(Follow.campaign_id == campaign_id, Follow.user_id == user_id)
    )
    db.session.commit()


def is_following(campaign_id: int, user_id: int) -> bool:
    """Tell whether the user follows the campaign."""
    return db.session.get(Follow, (campaign_id, user_id)) is not None


# -- coupons ---------------------------------------------------------------------------------


def new_code() -> str:
    """Return a fresh unguessable coupon code, grouped for reading: ABCD-EFGH-JKLM-NPQR."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def list_coupons(user_id: int) -> list[tuple[Coupon, Campaign]]:
    """Return the user's coupons with their campaigns, soonest expiry first."""
    return list(
        db.session.execute(
            select(Coupon, Campaign)
            .join(Campaign, Campaign.id == Coupon.campaign_id)
            .where(Coupon.user_id == user_id)
            .order_by(case((Coupon.status == "active", 0), else_=1), Coupon.expires_at)
        )
    )


def get_coupon(user_id: int, code: str) -> tuple[Coupon, Campaign]:
    """Return the caller's coupon with its campaign; NotFound for codes that are not theirs."""
    found = db.session.execute(
        select(Coupon, Campaign)
        .join(Campaign, Campaign.id == Coupon.campaign_id)
        .where(Coupon.code == code.strip().upper(), Coupon.user_id == user_id)
    ).one_or_none()
    if found is None:
        raise NotFound("code", gettext("No such coupon."))
    coupon, campaign = found
    return coupon, campaign


def redeem_coupon(user_id: int, code: str, now: datetime | None = None) -> Coupon:
    """Use the caller's active coupon; 404 for codes that are not theirs, 409 if not usable."""
    now = now or utcnow()
    code = code.strip().upper()
    # Conditional update: two redeems of one coupon cannot both succeed.
    count = rows_changed(
        update(Coupon)
        .where(
            Coupon.code == code,
            Coupon.user_id == user_id,
            Coupon.status == "active",
            Coupon.expires_at > now,
        )
        .values(status="used", used_at=now)
        .execution_options(synchronize_session=False)
    )
    coupon = db.session.scalars(
        select(Coupon).where(Coupon.code == code, Coupon.user_id == user_id)
    ).one_or_none()
    if coupon is None:
        # Someone else's code answers like an unknown one: codes are not to be probed.
        raise NotFound("code", gettext("No such coupon."))
    if not count:
        db.session.rollback()
        state = "expired" if coupon.status == "expired" or coupon.expires_at <= now else "used"
        if state == "expired":
            message = gettext("This coupon has expired.")
        else:
            message = gettext("This coupon is used.")
        raise Conflict("code", message, state)
    db.session.commit()
    return coupon


# -- closing at the deadline -----------------------------------------------------------------


def close_campaign(campaign_id: int, now: datetime | None = None) -> str | None:
    """Close a campaign past its deadline, once; return its new status, None if not ours.

    Succeeded when pledges reach the goal (a coupon for every backer, in the same commit),
    failed otherwise. The status change is a conditional UPDATE: of two schedulers racing,
    exactly one sees a changed row; the other gets None and does nothing.
    """
    now = now or utcnow()
    # Waits for in-flight pledges on PostgreSQL (they hold this row), so the sum is complete.
    db.session.execute(
        select(Campaign.id).where(Campaign.id == campaign_id).with_for_update()
    ).all()
    pledged = (
        select(func.coalesce(func.sum(Pledge.amount), 0))
        .where(Pledge.campaign_id == Campaign.id)
        .scalar_subquery()
    )
    status = db.session.scalar(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == "open", Campaign.deadline <= now)
        .values(
            status=case((pledged >= Campaign.goal_amount, "succeeded"), else_="failed"),
            closed_at=now,
        )
        .returning(Campaign.status)
        .execution_options(synchronize_session=False)
    )
    if status is None:
        db.session.rollback()
        return None
    if status == "succeeded":
        _issue_coupons(campaign_id, now)
    # In the closing commit: the creator hears exactly when the close happens, once.
    record([CampaignClosed(campaign_id)])
    db.session.commit()
    return status


def _issue_coupons(campaign_id: int, now: datetime) -> None:
    campaign = db.session.get_one(Campaign, campaign_id)
    expires_at = coupon_expires_at(now, campaign.coupon_valid_days)
    stmt = insert_ignoring_conflicts(Coupon.__table__, ["campaign_id", "user_id"])
    # Paged inside the closing transaction: the campaign's row lock stays held throughout.
    for backers in keyset_ids(_backers(campaign_id), Pledge.user_id, CHUNK, release=False):
        rows = [
            {
                "code": new_code(),
                "campaign_id": campaign_id,
                "user_id": user_id,
                "status": "active",
                "discount": campaign.coupon_discount,
                "expires_at": expires_at,
                "created_at": now,
            }
            for user_id in backers
        ]
        db.session.execute(stmt, rows)


def _backers(campaign_id: int) -> Select:
    """Select the distinct user ids who pledged to a campaign."""
    return select(Pledge.user_id).where(Pledge.campaign_id == campaign_id).distinct()


def notify_backers(campaign_id: int, chunk: int = CHUNK) -> int:
    """Tell every backer of a closed campaign how it ended, a chunk per commit.

    Dedupe keys make a rerun after a crash skip the backers already told.
    """
    campaign = db.session.get_one(Campaign, campaign_id)
    event_type = CampaignSucceeded if campaign.status == "succeeded" else CampaignFailed
    created = 0
    for backers in keyset_ids(_backers(campaign_id), Pledge.user_id, chunk):
        created += len(record([event_type(campaign_id, tuple(backers))]))
        db.session.commit()
    db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.notified_at.is_(None))
        .values(notified_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return created


# -- reminders and expiry --------------------------------------------------------------------


def remind_followers(campaign_id: int, hours: int = 24, chunk: int = CHUNK) -> int:
    """Remind followers who have not backed the campaign, a chunk per commit.

    hours is the reminder (48 or 24 before the deadline); each has its own dedupe key, so
    each reaches a follower once.
    """
    backed = exists().where(Pledge.campaign_id == campaign_id, Pledge.user_id == Follow.user_id)
    followers = select(Follow.user_id).where(Follow.campaign_id == campaign_id, ~backed)
    created = 0
    for chunk_ids in keyset_ids(followers, Follow.user_id, chunk):
        created += len(record([CampaignDeadlineNeared(campaign_id, tuple(chunk_ids), hours)]))
        db.session.commit()
    return created


def coupon_reminder_window(now: datetime) -> tuple[datetime, datetime]:
    """Return (now, end of tomorrow in APP_TIMEZONE): coupons expiring in it get a reminder.

    A coupon is valid through its last local day; the run at 09:00 on the day before tells
    its owner, and the run on that last day catches coupons issued too late for that.
    """
    zone = app_zone()
    today = now.astimezone(zone).date()
    return now, start_of_day(today + timedelta(days=2), zone)


def remind_coupon_owners(coupon_ids: list[int]) -> int:
    """Record coupon_expiring for these coupons and commit; return how many were new."""
    created = len(record([CouponsExpiring(tuple(coupon_ids))]))
    db.session.commit()
    return created


def expire_coupons(coupon_ids: list[int]) -> int:
    """Mark these coupons expired and commit; return how many changed."""
    # Conditional: a coupon redeemed since the scan read it stays used.
    count = rows_changed(
        update(Coupon)
        .where(Coupon.id.in_(coupon_ids), Coupon.status == "active")
        .values(status="expired")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return count
