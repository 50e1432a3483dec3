"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import sys

from webpush_server import create_app
from webpush_server.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One clear line instead of a traceback: this is an operator's mistake, not a bug.
    sys.exit(f"webpush-server: configuration error: {error}")
