"""`flask user create` and `flask user role`."""

from __future__ import annotations

import click
from flask import Blueprint

from ..errors import refused_to_cli
from .models import ROLES
from .services import create_user, set_role

bp = Blueprint("user", __name__, cli_group="user")


@bp.cli.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(ROLES), default="patron", show_default=True)
@click.option("--name", default=None, help="Display name (defaults to the e-mail's local part).")
def create(email: str, password: str, role: str, name: str | None) -> None:
    """Create an account."""
    with refused_to_cli():
        user = create_user(email, password, role, name)
    click.echo(f"created {user.role} {user.email}")


@bp.cli.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def role(email: str, role: str) -> None:
    """Give an account a role (recorded in the audit log)."""
    with refused_to_cli():
        user = set_role(email, role)
    click.echo(f"{user.email} is now {user.role}")
