"""The audit log of staff and admin actions: recorded where they happen, read by admins."""

from __future__ import annotations

from tests.factories import campaign_json
from tests.helpers import Api

LIBRARIAN = "desk@webpush-server.dev"
ADMIN = "boss@webpush-server.dev"
PATRON = "reader@webpush-server.dev"


def events(admin: Api, **query) -> list[dict]:
    answer = admin.get("/api/admin/audit", query_string=query)
    assert answer.status_code == 200, answer.text
    return answer.json["events"]


def test_staff_actions_are_recorded_with_who_what_and_where(app, make_user, runner, login_as):
    desk = login_as(LIBRARIAN, "librarian")
    boss = login_as(ADMIN, "admin")
    reader = login_as(PATRON)
    book = desk.post(
        "/api/library/books", json={"title": "Piranesi", "author": "S. Clarke", "copies": 2}
    ).json
    first, second = book["copy_ids"]
    lent = desk.post("/api/library/loans", json={"copy_id": first, "user_email": PATRON})
    assert lent.status_code == 201
    assert desk.post(f"/api/library/copies/{first}/return").status_code == 200
    # The patron's own cancel is theirs to make: not audited. The desk's cancel is.
    own = reader.post(f"/api/library/books/{book['id']}/holds").json["id"]
    assert reader.delete(f"/api/library/holds/{own}").status_code == 204
    theirs = reader.post(f"/api/library/books/{book['id']}/holds").json["id"]
    back = desk.client.post(
        f"/library/holds/{theirs}/cancel", data={"csrf_token": desk.csrf, "back": "/library/desk"}
    )
    assert back.status_code == 302
    campaign = boss.post("/api/funding/campaigns", json=campaign_json()).json["id"]
    assert (
        boss.put(f"/api/funding/campaigns/{campaign}", json=campaign_json(title="Lamps"))
    ).status_code == 200
    assert runner.invoke(args=["user", "role", PATRON, "librarian"]).exit_code == 0

    log = events(boss)
    assert [(e["actor"], e["action"]) for e in log] == [
        ("cli", "user.role"),
        (ADMIN, "campaign.update"),
        (ADMIN, "campaign.create"),
        (LIBRARIAN, "hold.cancel"),
        (LIBRARIAN, "loan.checkin"),
        (LIBRARIAN, "loan.checkout"),
    ]
    by_action = {e["action"]: e for e in log}
    assert by_action["loan.checkout"]["target"] == f"copy {first} to {PATRON}"
    assert f"hold {theirs}" in by_action["hold.cancel"]["target"]
    assert by_action["user.role"]["target"] == f"{PATRON}: patron -> librarian"
    assert by_action["campaign.update"]["target"] == f"campaign {campaign}: Lamps"
    assert {e["address"] for e in log if e["actor"] != "cli"} == {"127.0.0.1"}
    assert all(e["at"].endswith("+00:00") for e in log)
    assert [e["id"] for e in log] == sorted((e["id"] for e in log), reverse=True)
    assert second  # the other copy stayed on the shelf: no event for it


def test_a_refused_action_leaves_no_event(app, make_user, login_as):
    desk = login_as(LIBRARIAN, "librarian")
    boss = login_as(ADMIN, "admin")
    copy_id = desk.post(
        "/api/library/books", json={"title": "Dune", "author": "F. Herbert", "copies": 1}
    ).json["copy_ids"][0]
    assert desk.post(f"/api/library/copies/{copy_id}/return").status_code == 409
    nobody = desk.post("/api/library/loans", json={"copy_id": copy_id, "user_email": "x@y.org"})
    assert nobody.status_code == 404
    assert events(boss) == []


def test_the_log_pages_newest_first_with_limit_and_before(app, make_user, login_as):
    boss = login_as(ADMIN, "admin")
    ids = [
        boss.post("/api/funding/campaigns", json=campaign_json(title=f"C{i}")).json["id"]
        for i in range(5)
    ]
    page = events(boss, limit=2)
    assert [e["target"] for e in page] == [f"campaign {ids[4]}: C4", f"campaign {ids[3]}: C3"]
    rest = events(boss, limit=10, before=page[-1]["id"])
    assert [e["target"].split(": ")[1] for e in rest] == ["C2", "C1", "C0"]
    bad = boss.get("/api/admin/audit?limit=0")
    assert bad.status_code == 400 and bad.json["error"]["field"] == "limit"


def test_only_admins_read_the_log(app, make_user, client, login_as):
    desk = login_as(LIBRARIAN, "librarian")
    boss = login_as(ADMIN, "admin")
    assert client.get("/api/admin/audit").status_code == 401
    assert desk.get("/api/admin/audit").status_code == 403
    assert desk.get("/admin/audit").status_code == 403
    boss.post("/api/funding/campaigns", json=campaign_json(title="Visible"))
    page = boss.get("/admin/audit")
    assert page.status_code == 200
    assert "campaign.create" in page.text and "Visible" in page.text and ADMIN in page.text
    assert 'href="/admin/audit"' in page.text  # the admin's header links here
