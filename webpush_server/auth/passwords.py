"""The password policy: long enough, and not one of the passwords everybody tries first."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

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
            field, f"{field} must be at least {MIN_LENGTH} characters; a short phrase works well."
        )
    if len(password) > MAX_LENGTH:
        raise Invalid(field, f"{field} must be at most {MAX_LENGTH} characters.")
    folded = password.lower()
    stripped = folded.strip(_PADDING)
    common = common_passwords()
    # "password12345" or "qwerty!!!!!!" is as guessable as the word inside it.
    if folded in common or stripped in common or len(set(folded)) <= 2:
        raise Invalid(field, f"{field} is one of the most common passwords; choose another.")
    return password
