"""Funding pages: campaigns, pledging, following, my pledges, my coupons, admin forms."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..auth import role_required
from ..errors import APIError
from ..timeutil import app_zone, utcnow
from . import schedule_daily, services
from .api import coupon_status
from .timeutil import expires_on

bp = Blueprint("funding", __name__, url_prefix="/funding")
# The daily coupon run follows this app's APP_TIMEZONE.
bp.record_once(lambda state: schedule_daily(state.app))


@bp.app_template_filter("won")
def won(amount: int) -> str:
    """Format whole won: ₩1,250,000."""
    return f"₩{amount:,}"


@bp.app_template_filter("local_time")
def local_time(instant: datetime) -> str:
    """Format a UTC instant in APP_TIMEZONE."""
    zone = app_zone()
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M ") + zone.key


@bp.app_template_filter("time_left")
def time_left(deadline: datetime) -> str:
    """Say how long until deadline, roughly: 3 days, 5 hours, 12 minutes, closed."""
    seconds = (deadline - utcnow()).total_seconds()
    if seconds <= 0:
        return "deadline passed"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} left"
    return "less than a minute left"


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
    view = _or_404(services.get_campaign, campaign_id)
    following = current_user.is_authenticated and services.is_following(
        campaign_id, current_user.id
    )
    return render_template("funding/campaign.html", view=view, following=following)


@bp.post("/campaigns/<int:campaign_id>/pledge")
@login_required
def pledge(campaign_id: int):
    """Pledge from the campaign page."""
    try:
        services.pledge(campaign_id, current_user.id, request.form.get("amount", ""))
    except APIError as error:
        if error.status == 404:
            abort(404)
        flash(error.message, "error")
    else:
        flash("Thank you: your pledge is recorded.", "success")
    return redirect(url_for("funding.campaign", campaign_id=campaign_id))


@bp.post("/campaigns/<int:campaign_id>/follow")
@login_required
def toggle_follow(campaign_id: int):
    """Follow or unfollow from the campaign page."""
    if request.form.get("follow") == "1":
        _or_404(services.follow, campaign_id, current_user.id)
        flash("You will be reminded a day before the deadline.", "success")
    else:
        _or_404(services.unfollow, campaign_id, current_user.id)
        flash("You no longer follow this campaign.", "info")
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


@bp.post("/coupons/<code>/redeem")
@login_required
def redeem(code: str):
    """Redeem a coupon from My coupons."""
    try:
        services.redeem_coupon(current_user.id, code)
    except APIError as error:
        if error.status == 404:
            abort(404)
        flash(error.message, "error")
    else:
        flash(f"Coupon {code} redeemed.", "success")
    return redirect(url_for("funding.my_coupons"))


@bp.route("/admin/campaigns/new", methods=["GET", "POST"])
@role_required("admin")
def new_campaign():
    """Create a campaign (admins)."""
    if request.method == "GET":
        return render_template("funding/edit.html", form={}, campaign=None)
    try:
        fields = services.parse_campaign(request.form.to_dict(), app_zone())
        campaign_id = services.create_campaign(fields, current_user.id)
    except APIError as error:
        return _form_error("funding/edit.html", error, None)
    flash("Campaign created.", "success")
    return redirect(url_for("funding.campaign", campaign_id=campaign_id))


@bp.route("/admin/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@role_required("admin")
def edit_campaign(campaign_id: int):
    """Edit an open campaign (admins)."""
    view = _or_404(services.get_campaign, campaign_id)
    if request.method == "GET":
        c = view.campaign
        form = {
            "title": c.title,
            "description": c.description,
            "goal_amount": c.goal_amount,
            "deadline": c.deadline.astimezone(app_zone()).strftime("%Y-%m-%dT%H:%M"),
            "coupon_discount": c.coupon_discount,
            "coupon_valid_days": c.coupon_valid_days,
        }
        return render_template("funding/edit.html", form=form, campaign=c)
    try:
        fields = services.parse_campaign(request.form.to_dict(), app_zone())
        services.update_campaign(campaign_id, fields)
    except APIError as error:
        return _form_error("funding/edit.html", error, view.campaign)
    flash("Campaign saved.", "success")
    return redirect(url_for("funding.campaign", campaign_id=campaign_id))


def _form_error(template: str, error: APIError, campaign):
    return (
        render_template(template, form=request.form, campaign=campaign, error=error),
        error.status,
    )


def _or_404(func, *args):
    try:
        return func(*args)
    except APIError as error:
        if error.status == 404:
            abort(404)
        raise
