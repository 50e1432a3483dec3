"""Preferences (API and page), one-click unsubscribe, and the admin mail viewer."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from ..apidoc import documented
from ..auth import role_required
from ..errors import Refused, http_status, refusal_response
from . import mailbox, preferences, services, sms
from .schemas import CodeIn, PhoneIn, Preferences, PreferencesUpdate

bp = Blueprint("channels", __name__)


@bp.get("/api/preferences")
@documented(
    "The caller's notification preferences", responses={200: Preferences}, tags=("preferences",)
)
@login_required
def get_preferences():
    """Return the caller's preferences: every kind × channel, language, zone, quiet hours."""
    return jsonify(preferences.preferences_json(current_user))


@bp.put("/api/preferences")
@documented(
    "Merge changes into the caller's preferences",
    request=PreferencesUpdate,
    responses={200: Preferences},
    tags=("preferences",),
)
@login_required
def put_preferences():
    """Merge any part of the preferences; a bad field fails the whole request (400)."""
    try:
        return jsonify(preferences.update_preferences(current_user, request.get_json(silent=True)))
    except Refused as error:
        return refusal_response(error)


@bp.post("/api/preferences/phone")
@documented(
    "Add a phone number and text it a 6-digit code",
    request=PhoneIn,
    responses={202: Preferences},
    tags=("preferences",),
    errors=(409,),
)
@login_required
def add_phone():
    """Store the number unverified and text it a code (202); 400 names `number`."""
    data = request.get_json(silent=True)
    try:
        services.set_phone(current_user, data.get("number") if isinstance(data, dict) else None)
    except Refused as error:
        return refusal_response(error)
    return jsonify(preferences.preferences_json(current_user)), 202


@bp.post("/api/preferences/phone/verify")
@documented(
    "Verify the phone number with the code texted to it",
    request=CodeIn,
    responses={200: Preferences},
    tags=("preferences",),
)
@login_required
def verify_phone():
    """Mark the number verified (200), or 400 `invalid_code` (5 tries, 10 minutes)."""
    data = request.get_json(silent=True)
    try:
        services.verify_phone(current_user, data.get("code") if isinstance(data, dict) else None)
    except Refused as error:
        return refusal_response(error)
    return jsonify(preferences.preferences_json(current_user))


@bp.route("/settings/notifications", methods=["GET", "POST"])
@login_required
def settings_page():
    """The kind × channel matrix, language, time zone, quiet hours and digest hour."""
    error = None
    update: dict | None = None
    if request.method == "POST":
        update = services.form_to_update(request.form)
        try:
            preferences.update_preferences(current_user, update)
        except Refused as refused:
            error = refused
        else:
            flash(gettext("Notification settings saved."), "success")
            return redirect(url_for("channels.settings_page"))
    prefs = preferences.preferences_json(current_user)
    field_errors: dict[str, str] = {}
    other_errors: list[str] = []
    if error is not None and update is not None:
        # Show what was typed, not what is stored, and each message beside its input.
        services.keep_typed(prefs, update, request.form)
        field_errors, other_errors = services.errors_by_input(error)
    page = render_template(
        "channels/settings.html",
        prefs=prefs,
        required=preferences.REQUIRED,
        labels=services.kind_labels(),
        zones=services.common_zones(),
        sms_available=sms.available(),
        error=error,
        field_errors=field_errors,
        other_errors=other_errors,
    )
    return (page, http_status(error)) if error else page


@bp.post("/settings/notifications/phone")
@login_required
def settings_phone():
    """The page's phone form: text a code to the number given, or check the code entered."""
    try:
        if "code" in request.form:
            services.verify_phone(current_user, request.form.get("code", "").strip())
            flash(gettext("Phone number verified: SMS can reach you now."), "success")
        else:
            services.set_phone(current_user, request.form.get("number"))
            flash(
                gettext("We texted you a 6-digit code: enter it below within 10 minutes."),
                "success",
            )
    except Refused as error:
        flash(error.message, "error")
    return redirect(url_for("channels.settings_page") + "#phone-heading")


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def one_click_unsubscribe(token: str):
    """RFC 8058: a POST turns that kind's e-mail off without a login; GET asks first."""
    found = services.read_unsubscribe(token)
    if found is None:
        abort(404)
    user, kind = found
    kept = services.KEPT_ON_REQUEST.get(kind)
    if request.method == "GET":
        return render_template(
            "channels/unsubscribe.html", kind=kind, token=token, done=False, kept=kept
        )
    try:
        services.unsubscribe(user, kind)
    except Refused as error:
        return render_template("channels/unsubscribe.html", kind=kind, error=error, done=False), 409
    return render_template("channels/unsubscribe.html", kind=kind, done=True, kept=kept)


@bp.get("/admin/mail")
@role_required("admin")
def admin_mail():
    """What the embedded mail server received (`make run`): newest first."""
    return render_template(
        "channels/mail.html",
        messages=mailbox.read_messages(limit=100),
        keeping=mailbox.keep_dir() is not None,
    )
