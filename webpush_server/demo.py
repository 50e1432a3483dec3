"""`flask seed-demo`: demo accounts (and, from later issues, books and campaigns)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .auth.services import create_user, find_user
from .funding.demo import seed_funding

DEMO_PASSWORD = "demo-password"
DEMO_USERS = (
    ("patron@demo.webpush-server.dev", "patron", "Pat Reader"),
    ("librarian@demo.webpush-server.dev", "librarian", "Lee Brarian"),
    ("admin@demo.webpush-server.dev", "admin", "Ada Admin"),
)


def seed() -> list[str]:
    """Create whatever demo data is missing; return what was created."""
    created = []
    for email, role, name in DEMO_USERS:
        if find_user(email) is None:
            create_user(email, DEMO_PASSWORD, role, name)
            created.append(email)
    created += seed_funding(DEMO_PASSWORD)
    return created


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Demo accounts, books, campaigns; safe to run twice."""
    created = seed()
    click.echo(f"demo data: {len(created)} accounts created" if created else "demo data present")
    for email, role, _ in DEMO_USERS:
        click.echo(f"  {role:10} {email} / {DEMO_PASSWORD}")
