"""Small holes: private instance files from creation, and the device limit on moved devices."""

from __future__ import annotations

import os
import stat

from sqlalchemy import text

from tests.helpers import VAPID_SUBJECT, Api, dispose
from webpush_server import create_app
from webpush_server.config import write_private_file
from webpush_server.extensions import db


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_instance_folder_secret_key_and_sqlite_files_are_private_even_with_umask_0(tmp_path):
    instance = tmp_path / "instance"
    previous = os.umask(0)  # the worst case: nothing masked, so only the modes we ask for count
    try:
        # The default SQLite file in the instance folder, even when DATABASE_URL is set.
        database = f"sqlite:///{instance / 'webpush.db'}"
        app = create_app(
            {"TESTING": True, "VAPID_SUBJECT": VAPID_SUBJECT, "SQLALCHEMY_DATABASE_URI": database},
            instance_path=str(instance),
        )
        with app.app_context():
            db.session.execute(text("CREATE TABLE t (x INTEGER)"))
            db.session.commit()
        dispose(app)
    finally:
        os.umask(previous)
    assert mode(instance) == 0o700
    assert mode(instance / "secret_key") == 0o600
    created = sorted(p.name for p in instance.iterdir())
    assert "webpush.db" in created
    for name in created:
        assert mode(instance / name) & 0o077 == 0, name


def test_an_old_open_instance_folder_is_tightened(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    os.chmod(instance, 0o755)
    app = create_app(
        {"TESTING": True, "VAPID_SUBJECT": VAPID_SUBJECT, "SECRET_KEY": "x"},
        instance_path=str(instance),
    )
    dispose(app)
    assert mode(instance) == 0o700


def test_private_files_replace_old_ones_without_widening(tmp_path):
    path = tmp_path / "key.pem"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_private_file(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


def test_a_device_moved_from_another_account_counts_against_the_limit(
    make_app, make_user, push_service
):
    app = make_app(MAX_SUBSCRIPTIONS_PER_USER=1)
    make_user("first@webpush-server.dev")
    make_user("second@webpush-server.dev")
    first, second = Api(app.test_client()), Api(app.test_client())
    first.login("first@webpush-server.dev")
    second.login("second@webpush-server.dev")
    shared = push_service.new_subscription()
    assert first.post("/api/push/subscriptions", json=shared.as_json()).status_code == 201
    own = push_service.new_subscription()
    assert second.post("/api/push/subscriptions", json=own.as_json()).status_code == 201
    moved = second.post("/api/push/subscriptions", json=shared.as_json())
    assert moved.status_code == 409 and moved.json["error"]["code"] == "too_many_devices"
    assert len(first.get("/api/push/subscriptions").json["subscriptions"]) == 1
    # Re-sending one's own device is not a new device.
    assert second.post("/api/push/subscriptions", json=own.as_json()).status_code == 200
