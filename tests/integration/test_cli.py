"""The operator commands of docs/api.md."""

from __future__ import annotations

from webpush_server.push.vapid import key_path, load_private_key, public_key_b64


def test_user_create_then_exists(runner):
    args = [
        "user",
        "create",
        "desk@webpush-server.dev",
        "--password",
        "long enough pw",
        "--role",
        "librarian",
        "--name",
        "Desk",
    ]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "created librarian desk@webpush-server.dev" in first.output
    again = runner.invoke(args=args)
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_user_create_refuses_bad_role(runner):
    result = runner.invoke(
        args=[
            "user",
            "create",
            "x@webpush-server.dev",
            "--password",
            "long enough pw",
            "--role",
            "king",
        ]
    )
    assert result.exit_code == 2


def test_vapid_generate_keeps_an_existing_key_unless_forced(runner, app):
    path = key_path(app.instance_path)
    path.unlink(missing_ok=True)
    try:
        first = runner.invoke(args=["vapid", "generate"])
        assert first.exit_code == 0
        public = public_key_b64(load_private_key(path.read_text()))
        assert first.output.strip().endswith(public)
        again = runner.invoke(args=["vapid", "generate"])
        assert "exists" in again.output and again.output.strip().endswith(public)
        forced = runner.invoke(args=["vapid", "generate", "--force"])
        assert not forced.output.strip().endswith(public)
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    finally:
        path.unlink(missing_ok=True)


def test_seed_demo_is_safe_to_run_twice(runner):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and "records created" in first.output
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0 and "demo data present" in second.output


def test_jobs_list_and_unknown_job(runner):
    listed = runner.invoke(args=["jobs", "list"])
    assert "sweep-outbox" in listed.output
    unknown = runner.invoke(args=["jobs", "run", "nope"])
    assert unknown.exit_code == 2
