"""`flask seed-demo`: demo accounts, books, campaigns and a day of delivery history."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .auth.services import create_user, find_user
from .extensions import db
from .funding.demo import seed_funding
from .ops.demo import seed_history

DEMO_PASSWORD = "demo-password"
DEMO_USERS = (
    ("patron@demo.webpush-server.dev", "patron", "Pat Reader"),
    ("librarian@demo.webpush-server.dev", "librarian", "Lee Brarian"),
    ("admin@demo.webpush-server.dev", "admin", "Ada Admin"),
)
# More readers, so the demo library has loans and queues.
DEMO_READERS = (
    ("min-ji@demo.webpush-server.dev", "Kim Min-ji"),
    ("joon@demo.webpush-server.dev", "Park Joon"),
    ("sofia@demo.webpush-server.dev", "Sofia Rossi"),
    ("amara@demo.webpush-server.dev", "Amara Okafor"),
)


def seed() -> list[str]:
    """Create whatever demo data is missing; return the accounts created."""
    from .library import demo as library_demo

    created = []
    for email, role, name in DEMO_USERS + tuple((e, "patron", n) for e, n in DEMO_READERS):
        if find_user(email) is None:
            create_user(email, DEMO_PASSWORD, role, name)
            created.append(email)
    # The demo patron is not among the borrowers, so their pages start clean.
    # Every demo reader exists now: created above, or by an earlier run.
    readers = [user.id for email, _ in DEMO_READERS if (user := find_user(email))]
    library_demo.seed(readers)
    created += seed_funding(DEMO_PASSWORD)
    # A day of delivery history, for the operations dashboard (/admin/).
    if seed_history(readers):
        created.append("delivery history")
    db.session.commit()
    return created


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Demo accounts, books, campaigns; safe to run twice."""
    created = seed()
    click.echo(f"demo data: {len(created)} records created" if created else "demo data present")
    for email, role, _ in DEMO_USERS:
        click.echo(f"  {role:10} {email} / {DEMO_PASSWORD}")
