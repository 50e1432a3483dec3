"""Startup validation of settings."""

from __future__ import annotations

import pytest

from webpush_server.config import ConfigError, normalize_database_url, validate_vapid_subject


@pytest.mark.parametrize(
    "subject",
    ["mailto:push-ops@library.org", "https://library.org", "https://push.library.org/contact"],
)
def test_valid_subjects(subject):
    assert validate_vapid_subject(subject) == subject


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        (None, "not set"),
        ("", "not set"),
        ("mailto:admin@localhost", "placeholder or local"),
        ("https://localhost", "placeholder or local"),
        ("https://intranet", "not a valid https"),
        ("mailto:you@example.com", "placeholder or local"),
        ("https://www.example.org", "placeholder or local"),
        ("mailto: ops@library.org", "spaces"),
        ("mailto:ops@library.org ", "spaces"),
        ("ops@library.org", "must start with mailto: or https:"),
        ("http://library.org", "must start with mailto: or https:"),
        ("mailto:library.org", "not a valid mailto"),
    ],
)
def test_refused_subjects_say_why(subject, reason):
    with pytest.raises(ConfigError, match=reason):
        validate_vapid_subject(subject)


def test_database_url_mapping():
    assert normalize_database_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_database_url("postgresql://h/db") == "postgresql+psycopg://h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_app_refuses_to_start_without_a_subject(monkeypatch, tmp_path):
    from webpush_server import create_app

    monkeypatch.delenv("VAPID_SUBJECT", raising=False)
    with pytest.raises(ConfigError, match="VAPID_SUBJECT is not set"):
        # None also masks a subject in the environment (deleted above) or a FLASK_ setting.
        create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
                "SECRET_KEY": "k",
                "VAPID_SUBJECT": None,
            },
            instance_path=str(tmp_path / "instance"),
        )
