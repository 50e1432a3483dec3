"""Login and logout pages."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required, login_user, logout_user

from ..errors import safe_back
from .services import authenticate

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    return safe_back(target, url_for("main.index"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; sign the user in on POST."""
    if request.method == "GET":
        return render_template("auth/login.html", next=request.args.get("next", ""), email="")
    email = request.form.get("email", "")
    user = authenticate(email, request.form.get("password", ""))
    if user is None:
        return (
            render_template(
                "auth/login.html",
                error="Wrong e-mail or password.",
                email=email,
                next=request.form.get("next", ""),
            ),
            401,
        )
    login_user(user)
    flash(f"Welcome, {user.name}.", "success")
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
@login_required
def logout():
    """Sign out."""
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
