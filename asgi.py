"""The ASGI entry point of the web dyno (the Procfile): gunicorn serving `asgi:app`."""

from webpush_server.realtime.asgi import LiveApp
from wsgi import app as flask_app

app = LiveApp(flask_app)
