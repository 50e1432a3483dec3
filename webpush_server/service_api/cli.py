"""`flask apikey create|list|revoke`."""

from __future__ import annotations

import click
from flask import Blueprint

from ..errors import as_id, refused_to_cli
from ..timeutil import isoformat
from . import keys
from .models import SITES

bp = Blueprint("apikey", __name__, cli_group="apikey")


@bp.cli.command("create")
@click.argument("name")
@click.option("--site", type=click.Choice(SITES), default="all", show_default=True)
def create(name: str, site: str) -> None:
    """Create an API key and print it (once: only its hash is kept)."""
    with refused_to_cli():
        key, secret = keys.create_key(name, site)
    click.echo(secret)
    click.echo(
        f"key {key.id} ({key.name}, site {key.site}): keep it now, it is not shown again", err=True
    )


@bp.cli.command("list")
def list_keys() -> None:
    """Print one row per key: id, name, site, created, last used (never the secret)."""
    for key in keys.list_keys():
        revoked = f"  revoked {isoformat(key.revoked_at)}" if key.revoked_at else ""
        click.echo(
            f"{key.id:<5} {key.name:<30} {key.site:<8} created {isoformat(key.created_at)}"
            f"  last used {isoformat(key.last_used_at) or 'never'}  {key.prefix}…{revoked}"
        )


@bp.cli.command("revoke")
@click.argument("key_id", metavar="ID")
def revoke(key_id: str) -> None:
    """Revoke the key with this id (as `apikey list` shows it)."""
    with refused_to_cli():
        key = keys.revoke_key(as_id(key_id) or 0)
    click.echo(f"revoked key {key.id} ({key.name})")
