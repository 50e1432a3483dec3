"""Funding pages: campaigns, pledging, following, my pledges, my coupons, admin forms."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_login import current_user, login_required

from ..auth import role_required
from ..errors import InvalidFields, Refused, http_status, refused_to_page
from ..extensions import db
from ..timeutil import app_zone, local_time, utcnow
from . import services
from .api import coupon_status
from .limits import pledge_limit
from .timeutil import expires_on

bp = Blueprint("funding", __name__, url_prefix="/funding")


@bp.app_template_filter("time_left")
def time_left(deadline: datetime) -> str:
    """Say how long until deadline, roughly: 3 days, 5 hours, 12 minutes, closed."""
    seconds = (deadline - utcnow()).total_seconds()
    if seconds <= 0:
        return gettext("deadline passed")
    if seconds >= 86400:
        return ngettext("%(num)d day left", "%(num)d days left", int(seconds // 86400))
    if seconds >= 3600:
        return ngettext("%(num)d hour left", "%(num)d hours left", int(seconds // 3600))
    if seconds >= 60:
        return ngettext("%(num)d minute left", "%(num)d minutes left", int(seconds // 60))
    return gettext("less than a minute left")


@bp.app_context_processor
def funding_helpers() -> dict:
    return {"coupon_status": coupon_status, "coupon_expires_on": _expires_on}


def _expires_on(instant: datetime) -> str:
    return expires_on(instant, app_zone()).isoformat()


@bp.get("/")
def index():
    """Campaigns with progress bars and time left."""
    return render_template("funding/index.html", campaigns=services.list_campaigns())


@bp.get("/campaigns/<int:campaign_id>")
def campaign(campaign_id: int):
    """One campaign: progress, the pledge form, the follow toggle."""
    return _campaign_page(campaign_id)


def _campaign_page(campaign_id: int, amount: str = "", amount_error: str | None = None) -> str:
    view = services.get_campaign(campaign_id)
    following = current_user.is_authenticated and services.is_following(
        campaign_id, current_user.id
    )
    return render_template(
        "funding/campaign.html",
        view=view,
        following=following,
        amount=amount,
        amount_error=amount_error,
        pledge_label=services.PLEDGE_LABEL,
    )


@bp.post("/campaigns/<int:campaign_id>/pledge")
@login_required
@pledge_limit
def pledge(campaign_id: int):
    """Pledge from the campaign page."""
    back = url_for("funding.campaign", campaign_id=campaign_id)
    amount = request.form.get("amount", "")
    try:
        services.pledge(campaign_id, current_user.id, amount)
    except Refused as error:
        if error.field != "amount":  # closed or gone: the campaign page says so
            return refused_to_page(error, back)
        # The page again, the amount as typed and the message beside it.
        page = _campaign_page(campaign_id, amount=amount, amount_error=error.message)
        return page, http_status(error)
    flash(gettext("Thank you: your pledge is recorded."), "success")
    return redirect(back)


@bp.post("/campaigns/<int:campaign_id>/follow")
@login_required
def toggle_follow(campaign_id: int):
    """Follow or unfollow from the campaign page."""
    if request.form.get("follow") == "1":
        services.follow(campaign_id, current_user.id)
        flash(
            gettext("You will be reminded two days and again one day before the deadline."),
            "success",
        )
    else:
        services.unfollow(campaign_id, current_user.id)
        flash(gettext("You no longer follow this campaign."), "info")
    return redirect(url_for("funding.campaign", campaign_id=campaign_id))


@bp.get("/pledges")
@login_required
def my_pledges():
    """The caller's pledges."""
    return render_template("funding/pledges.html", pledges=services.list_pledges(current_user.id))


@bp.get("/coupons")
@login_required
def my_coupons():
    """The caller's coupons, expiry dates in APP_TIMEZONE, with a redeem button."""
    return render_template("funding/coupons.html", coupons=services.list_coupons(current_user.id))


@bp.get("/coupons/<code>/redeem")
@login_required
def confirm_redeem(code: str):
    """Ask before redeeming: a redeemed coupon is used up, and there is no undo."""
    back = url_for("funding.my_coupons")
    try:
        coupon, campaign = services.get_coupon(current_user.id, code)
    except Refused as error:
        return refused_to_page(error, back)
    status = coupon_status(coupon)
    if status != "active":
        if status == "expired":
            message = gettext(
                "Coupon %(code)s has expired: it cannot be redeemed.", code=coupon.code
            )
        else:
            message = gettext("Coupon %(code)s is used: it cannot be redeemed.", code=coupon.code)
        flash(message, "info")
        return redirect(back)
    return render_template("funding/redeem.html", coupon=coupon, campaign=campaign)


@bp.post("/coupons/<code>/redeem")
@login_required
def redeem(code: str):
    """Redeem a coupon, once its owner confirmed on the page above."""
    back = url_for("funding.my_coupons")
    try:
        services.redeem_coupon(current_user.id, code)
    except Refused as error:
        return refused_to_page(error, back)
    flash(gettext("Coupon %(code)s redeemed.", code=code), "success")
    return redirect(back)


def _errors(error: Refused | None) -> dict[str, str]:
    """Map each invalid field to its message, for showing beside the field."""
    if isinstance(error, InvalidFields):
        return error.errors
    if error is not None and error.field in services.CAMPAIGN_LABELS:
        return {error.field: error.message}
    return {}


def _edit_page(campaign, form, error: Refused | None = None, status: int = 200):
    """Render the campaign form; a refusal keeps what was typed and marks each bad field."""
    page = render_template(
        "funding/edit.html",
        form=form,
        campaign=campaign,
        closed=campaign is not None and campaign.status != "open",
        labels=services.CAMPAIGN_LABELS,
        errors=_errors(error),
        error=error,
    )
    return page, status


def _stored_form(c) -> dict:
    return {
        "title": c.title,
        "description": c.description,
        "goal_amount": c.goal_amount,
        "deadline": local_time(c.deadline, "input"),
        "coupon_discount": c.coupon_discount,
        "coupon_valid_days": c.coupon_valid_days,
    }


@bp.route("/admin/campaigns/new", methods=["GET", "POST"])
@role_required("admin")
def new_campaign():
    """Create a campaign (admins)."""
    if request.method == "GET":
        return _edit_page(None, {})
    try:
        fields = services.parse_campaign(request.form.to_dict(), app_zone())
        campaign_id = services.create_campaign(fields, current_user.id)
    except Refused as error:
        return _edit_page(None, request.form, error, http_status(error))
    flash(gettext("Campaign created."), "success")
    return redirect(url_for("funding.campaign", campaign_id=campaign_id))


@bp.route("/admin/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@role_required("admin")
def edit_campaign(campaign_id: int):
    """Edit an open campaign (admins); a closed one's page says why it cannot be saved."""
    c = services.get_campaign(campaign_id).campaign
    if request.method == "GET":
        return _edit_page(c, _stored_form(c))
    if c.status != "open":
        # Said before any field is checked: its past deadline is not what is wrong.
        return _edit_page(c, _stored_form(c), status=409)
    try:
        fields = services.parse_campaign(request.form.to_dict(), app_zone())
        services.update_campaign(campaign_id, fields)
    except Refused as error:
        db.session.rollback()
        c = services.get_campaign(campaign_id).campaign  # closed meanwhile: say so
        form = _stored_form(c) if c.status != "open" else request.form
        return _edit_page(c, form, error, http_status(error))
    flash(gettext("Campaign saved."), "success")
    return redirect(url_for("funding.campaign", campaign_id=campaign_id))
