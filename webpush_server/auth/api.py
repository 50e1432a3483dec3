"""The session's own account, as JSON: `GET /api/me`."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user, login_required

from ..apidoc import documented
from .schemas import Me

bp = Blueprint("auth_api", __name__, url_prefix="/api")


@bp.get("/me")
@documented("Who the session belongs to", responses={200: Me}, tags=("account",))
@login_required
def me():
    """Return the logged-in user's id, e-mail, name and role."""
    return jsonify(
        id=current_user.id, email=current_user.email, name=current_user.name, role=current_user.role
    )
