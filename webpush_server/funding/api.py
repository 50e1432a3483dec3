"""The funding JSON API (docs/api.md, "Funding")."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user, login_required

from ..apidoc import documented
from ..auth import role_required
from ..timeutil import app_zone, isoformat, utcnow
from . import services
from .limits import pledge_limit
from .models import Campaign, Coupon
from .schemas import Campaign as CampaignOut
from .schemas import CampaignIn, Campaigns, Coupons, Created, PledgeIn, Pledges
from .schemas import Coupon as CouponOut
from .timeutil import expires_on

bp = Blueprint("funding_api", __name__, url_prefix="/api/funding")


def coupon_status(coupon: Coupon) -> str:
    """Return the coupon's status as users see it: past its expiry it is expired at once."""
    if coupon.status == "active" and coupon.expires_at <= utcnow():
        return "expired"
    return coupon.status


def coupon_json(coupon: Coupon, campaign: Campaign) -> dict:
    """Return the API shape of a coupon."""
    return {
        "code": coupon.code,
        "campaign_id": campaign.id,
        "campaign_title": campaign.title,
        "discount": coupon.discount,
        "status": coupon_status(coupon),
        "expires_on": expires_on(coupon.expires_at, app_zone()).isoformat(),
    }


@bp.get("/campaigns")
@documented(
    "Every campaign", responses={200: Campaigns}, auth="optional-session", tags=("funding",)
)
def campaigns():
    """List campaigns with their totals."""
    return jsonify(campaigns=[view.to_json() for view in services.list_campaigns()])


@bp.get("/campaigns/<int:campaign_id>")
@documented(
    "One campaign",
    responses={200: CampaignOut},
    auth="optional-session",
    tags=("funding",),
    errors=(404,),
)
def campaign(campaign_id: int):
    """Return one campaign; following tells whether the caller follows it."""
    view = services.get_campaign(campaign_id).to_json()
    if current_user.is_authenticated:
        view["following"] = services.is_following(campaign_id, current_user.id)
    return jsonify(view)


@bp.post("/campaigns")
@documented(
    "Create a campaign (admins)",
    request=CampaignIn,
    responses={201: Created},
    tags=("funding",),
    errors=(403,),
)
@role_required("admin")
def create_campaign():
    """Create a campaign (admins)."""
    fields = services.parse_campaign(request.get_json(silent=True))
    return jsonify(id=services.create_campaign(fields, current_user.id)), 201


@bp.put("/campaigns/<int:campaign_id>")
@documented(
    "Edit an open campaign (admins)",
    request=CampaignIn,
    responses={200: CampaignOut},
    tags=("funding",),
    errors=(403, 404, 409),
)
@role_required("admin")
def update_campaign(campaign_id: int):
    """Edit an open campaign (admins)."""
    services.ensure_open(campaign_id)
    services.update_campaign(campaign_id, services.parse_campaign(request.get_json(silent=True)))
    return jsonify(services.get_campaign(campaign_id).to_json())


@bp.post("/campaigns/<int:campaign_id>/pledges")
@documented(
    "Pledge to an open campaign",
    request=PledgeIn,
    responses={201: Created},
    tags=("funding",),
    errors=(404, 409),
)
@login_required
@pledge_limit
def pledge(campaign_id: int):
    """Pledge an amount (won) to an open campaign."""
    data = request.get_json(silent=True)
    amount = data.get("amount") if isinstance(data, dict) else None
    return jsonify(id=services.pledge(campaign_id, current_user.id, amount)), 201


@bp.get("/pledges")
@documented("My pledges", responses={200: Pledges}, tags=("funding",))
@login_required
def pledges():
    """List the caller's pledges."""
    return jsonify(
        pledges=[
            {
                "id": p.id,
                "campaign_id": c.id,
                "campaign_title": c.title,
                "amount": p.amount,
                "created_at": isoformat(p.created_at),
                "campaign_status": c.status,
            }
            for p, c in services.list_pledges(current_user.id)
        ]
    )


@bp.put("/campaigns/<int:campaign_id>/interest")
@documented("Follow a campaign", responses={204: None}, tags=("funding",), errors=(404,))
@login_required
def follow(campaign_id: int):
    """Follow a campaign."""
    services.follow(campaign_id, current_user.id)
    return "", 204


@bp.delete("/campaigns/<int:campaign_id>/interest")
@documented("Stop following", responses={204: None}, tags=("funding",), errors=(404,))
@login_required
def unfollow(campaign_id: int):
    """Stop following a campaign."""
    services.unfollow(campaign_id, current_user.id)
    return "", 204


@bp.get("/coupons")
@documented("My coupons", responses={200: Coupons}, tags=("funding",))
@login_required
def coupons():
    """List the caller's own coupons."""
    return jsonify(coupons=[coupon_json(cp, c) for cp, c in services.list_coupons(current_user.id)])


@bp.post("/coupons/<code>/redeem")
@documented(
    "Use one of my coupons", responses={200: CouponOut}, tags=("funding",), errors=(404, 409)
)
@login_required
def redeem(code: str):
    """Use one of the caller's active coupons."""
    coupon = services.redeem_coupon(current_user.id, code)
    return jsonify(coupon_json(coupon, services.get_campaign(coupon.campaign_id).campaign))
