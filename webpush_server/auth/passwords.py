"""The password policy: long enough, and not one of the passwords everybody tries first."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from flask_babel import gettext

from ..errors import Invalid

MIN_LENGTH = 12
MAX_LENGTH = 1024
# Digits and symbols people tack onto a common password to pass a length rule.
_PADDING = "0123456789!@#$%^&*()-_=+.,?~ "


@cache
def common_passwords() -> frozenset[str]:
    """Return the shipped list of the most common passwords, lower case."""
    text = files(__package__).joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def check_password_policy(password: object, field: str = "password") -> str:
    """Return password if it may be used for an account; else raise Invalid naming field."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise Invalid(
            field,
            gettext(
                "%(label)s must be at least %(n)d characters; a short phrase works well.",
                label=_label(field),
                n=MIN_LENGTH,
            ),
        )
    if len(password) > MAX_LENGTH:
        raise Invalid(
            field,
            gettext(
                "%(label)s must be at most %(limit)s characters.",
                label=_label(field),
                limit=str(MAX_LENGTH),
            ),
        )
    folded = password.lower()
    stripped = folded.strip(_PADDING)
    common = common_passwords()
    # "password12345" or "qwerty!!!!!!" is as guessable as the word inside it.
    if folded in common or stripped in common or len(set(folded)) <= 2:
        raise Invalid(
            field,
            gettext(
                "%(label)s is one of the most common passwords; choose another.",
                label=_label(field),
            ),
        )
    return password


def _label(field: str) -> str:
    """Name a password field as its form labels it."""
    if field == "new_password":
        return gettext("New password")
    return gettext("Password") if field == "password" else field
