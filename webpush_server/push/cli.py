"""`flask vapid generate`."""

from __future__ import annotations

import click
from flask import Blueprint, current_app

from .vapid import generate_key_file, key_path, load_private_key, public_key_b64

bp = Blueprint("vapid", __name__, cli_group="vapid")


@bp.cli.command("generate")
@click.option("--force", is_flag=True, help="Replace an existing key (every device resubscribes).")
def generate(force: bool) -> None:
    """Create the VAPID key pair in instance/ and print the public key."""
    path = key_path(current_app.instance_path)
    if path.exists() and not force:
        key = load_private_key(path.read_text())
        click.echo(f"VAPID key exists at {path} (use --force to replace it)")
    else:
        key = generate_key_file(path)
        click.echo(f"VAPID key written to {path}")
    click.echo(public_key_b64(key))
