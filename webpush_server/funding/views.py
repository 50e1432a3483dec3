"""Funding pages: campaigns, pledging, following, my pledges, my coupons, admin forms."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..auth import role_required
from ..errors import Refused, http_status, refused_to_page
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
    view = services.get_campaign(campaign_id)
    following = current_user.is_authenticated and services.is_following(
        campaign_id, current_user.id
    )
    return render_template("funding/campaign.html", view=view, following=following)


@bp.post("/campaigns/<int:campaign_id>/pledge")
@login_required
@pledge_limit
def pledge(campaign_id: int):
    """Pledge from the campaign page."""
    back = url_for("funding.campaign", campaign_id=campaign_id)
    try:
        services.pledge(campaign_id, current_user.id, request.form.get("amount", ""))
    except Refused as error:
        return refused_to_page(error, back)
    flash("Thank you: your pledge is recorded.", "success")
    return redirect(back)


@bp.post("/campaigns/<int:campaign_id>/follow")
@login_required
def toggle_follow(campaign_id: int):
    """Follow or unfollow from the campaign page."""
    if request.form.get("follow") == "1":
        services.follow(campaign_id, current_user.id)
        flash("You will be reminded two days and again one day before the deadline.", "success")
    else:
        services.unfollow(campaign_id, current_user.id)
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
    back = url_for("funding.my_coupons")
    try:
        services.redeem_coupon(current_user.id, code)
    except Refused as error:
        return refused_to_page(error, back)
    flash(f"Coupon {code} redeemed.", "success")
    return redirect(back)


@bp.route("/admin/campaigns/new", methods=["GET", "POST"])
@role_required("admin")
def new_campaign():
    """Create a campaign (admins)."""
    if request.method == "GET":
        return render_template("funding/edit.html", form={}, campaign=None)
    try:
        fields = services.parse_campaign(request.form.to_dict(), app_zone())
        campaign_id = services.create_campaign(fields, current_user.id)
    except Refused as error:
        return _form_error("funding/edit.html", error, None)
    flash("Campaign created.", "success")
    return redirect(url_for("funding.campaign", campaign_id=campaign_id))


@bp.route("/admin/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@role_required("admin")
def edit_campaign(campaign_id: int):
    """Edit an open campaign (admins)."""
    view = services.get_campaign(campaign_id)
    if request.method == "GET":
        c = view.campaign
        form = {
            "title": c.title,
            "description": c.description,
            "goal_amount": c.goal_amount,
            "deadline": local_time(c.deadline, "input"),
            "coupon_discount": c.coupon_discount,
            "coupon_valid_days": c.coupon_valid_days,
        }
        return render_template("funding/edit.html", form=form, campaign=c)
    try:
        fields = services.parse_campaign(request.form.to_dict(), app_zone())
        services.update_campaign(campaign_id, fields)
    except Refused as error:
        return _form_error("funding/edit.html", error, view.campaign)
    flash("Campaign saved.", "success")
    return redirect(url_for("funding.campaign", campaign_id=campaign_id))


def _form_error(template: str, error: Refused, campaign):
    return (
        render_template(template, form=request.form, campaign=campaign, error=error),
        http_status(error),
    )
