"""Every page, for every role, at a phone and a desktop width: no sideways scrolling, nothing
cut off, touch targets big enough on the phone, and no serious or critical axe-core violation.

Firefox ESR drives it. Headless Firefox will not make its window narrower than 500 px, so the
phone width is set on the content area itself (the `<browser>` element, as Firefox's own
responsive design mode does): the page then sees a 390 px viewport, as on a phone. axe-core is
vendored in tests/browser/vendor (npm `axe-core`, MPL-2.0) and run inside each page; nothing is
fetched from the network. Screenshots land in SCREENSHOT_DIR (else the test's tmp folder).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import log_in_firefox

pytestmark = pytest.mark.browser

PHONE, DESKTOP = 390, 1366
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
# Unbroken words as long as the forms accept: a campaign title (200), a book title (300) and a
# 400-character description.
LONG_TITLE = "Lanterns" * 25
LONG_BOOK = "Bookshelves" * 27 + "xxx"
LONG_WORD = "Description" * 36 + "abcd"


def seed_pages(app) -> dict[str, int]:
    """Seed the demo data plus the longest words the forms take; return ids the pages need."""
    from webpush_server.auth.services import find_user
    from webpush_server.demo import DEMO_PASSWORD, seed
    from webpush_server.extensions import db
    from webpush_server.funding import services as funding
    from webpush_server.library import services as library
    from webpush_server.notifications.models import Delivery
    from webpush_server.notifications.record import Notice, record_notices
    from webpush_server.timeutil import utcnow

    assert DEMO_PASSWORD
    with app.app_context():
        seed()
        admin = find_user("admin@demo.webpush-server.dev")
        patron = find_user("patron@demo.webpush-server.dev")
        assert admin and patron
        fields = funding.parse_campaign(
            {
                "title": LONG_TITLE,
                "description": LONG_WORD,
                "goal_amount": 1_000_000,
                "deadline": (utcnow() + timedelta(days=2)).isoformat(),
                "coupon_discount": 10,
                "coupon_valid_days": 30,
            }
        )
        campaign_id = funding.create_campaign(fields, admin.id)
        funding.pledge(campaign_id, patron.id, 50_000)
        # The patron waits for one long-titled book (lent to another reader) and borrows another.
        book, copies = library.add_book(LONG_BOOK, "A" * 60, None, 1)
        book_id = book.id
        library.check_out(copies[0], "min-ji@demo.webpush-server.dev")
        hold = library.place_hold(patron.id, book_id)
        _, more = library.add_book(LONG_BOOK[:-3] + "yyy", "B" * 60, None, 1)
        library.check_out(more[0], patron.email)
        hold_id = hold.id
        db.session.commit()
        record_notices(
            [
                Notice(
                    user_id=patron.id,
                    kind="book_available",
                    title=LONG_BOOK[:120],
                    body=LONG_WORD,
                    url=f"/library/books/{book_id}",
                    dedupe_key="layout-walk-long",
                )
            ]
        )
        db.session.commit()
        delivery_id = db.session.scalar(db.select(Delivery.id).limit(1)) or 1
    return {
        "campaign": campaign_id,
        "book": book_id,
        "hold": hold_id,
        "delivery": delivery_id,
    }


def pages_for(role: str, ids: dict[str, int]) -> list[str]:
    """The pages a role walks through."""
    common = ["/", "/funding/", f"/funding/campaigns/{ids['campaign']}", "/funding/campaigns/1"]
    if role == "guest":
        return [*common, "/login", "/account/password-reset", "/no-such-page"]
    signed_in = [
        *common,
        "/library/",
        f"/library/books/{ids['book']}",
        "/notifications",
        "/settings/notifications",
        "/account/password",
    ]
    if role in ("patron", "backer"):
        return [
            *signed_in,
            "/library/holds",
            "/library/loans",
            "/funding/pledges",
            "/funding/coupons",
            *([f"/library/holds/{ids['hold']}"] if role == "patron" else []),
        ]
    if role == "librarian":
        return [*signed_in, "/library/desk", "/library/holds"]
    return [
        *signed_in,
        "/library/desk",
        "/admin/",
        "/admin/deliveries",
        f"/admin/deliveries/{ids['delivery']}",
        "/admin/notifications",
        "/admin/subscriptions",
        "/admin/jobs",
        "/admin/api-keys",
        "/admin/audit",
        "/admin/mail",
        "/funding/admin/campaigns/new",
        f"/funding/admin/campaigns/{ids['campaign']}/edit",
    ]


ACCOUNTS = {
    "patron": "patron@demo.webpush-server.dev",
    "backer": "backer1@demo.webpush-server.dev",
    "librarian": "librarian@demo.webpush-server.dev",
    "admin": "admin@demo.webpush-server.dev",
}

# Measured in the page: how far it scrolls sideways, whether the root hides overflow, what
# sticks out past the viewport, and which controls are smaller than a fingertip.
MEASURE = """
const width = arguments[0];
const root = document.documentElement;
const hidden = [root, document.body].filter(
  (el) => ['hidden', 'clip'].includes(getComputedStyle(el).overflowX)).map((el) => el.localName);
const name = (el) => el.localName + (el.id ? '#' + el.id : '') +
  (el.classList.length ? '.' + [...el.classList].join('.') : '');
// A closed <details> shows only its summary; Firefox still lays out the rest (its content is
// content-visibility: hidden), so a rect alone would count what nobody can see.
const folded = (el) => {
  const details = el.closest('details:not([open])');
  return details !== null && details !== el && !el.closest('summary');
};
const visible = (el) => {
  if (folded(el)) return false;
  const r = el.getBoundingClientRect();
  const s = getComputedStyle(el);
  return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && !el.closest('[hidden]');
};
const outside = [];
for (const el of document.body.querySelectorAll('*')) {
  if (!visible(el) || el.closest('.skip-link, .sr-only')) continue;
  const r = el.getBoundingClientRect();
  if (r.right > width + 1 || r.left < -1) {
    outside.push(name(el) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
}
const small = [];
if (width < 600) {
  const controls =
    'button, .btn, input:not([type=hidden]), select, summary, .site-nav a, .subnav a';
  for (const el of document.querySelectorAll(controls)) {
    if (!visible(el)) continue;
    const r = el.getBoundingClientRect();
    const box = el.type === 'checkbox' || el.type === 'radio' ? el.closest('label') || el : el;
    const b = box.getBoundingClientRect();
    if (Math.max(r.height, b.height) < 44 || Math.max(r.width, b.width) < 44) {
      small.push(name(el) + ' ' + Math.round(b.width) + 'x' + Math.round(b.height));
    }
  }
}
return {scroll: root.scrollWidth, viewport: root.clientWidth, hidden: hidden,
        outside: outside.slice(0, 5), small: small.slice(0, 5)};
"""

TRIM_ROWS = """
const rest = 'tbody > tr:nth-child(n+16), .item-list > li:nth-child(n+16)';
for (const el of document.querySelectorAll(rest)) el.remove();
"""

RUN_AXE = """
const result = await axe.run(document, {resultTypes: ['violations']});
return result.violations
  .filter((v) => v.impact === 'serious' || v.impact === 'critical')
  .map((v) => v.id + ': ' + v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | '));
"""


def set_width(firefox, width: int) -> None:
    """Give the page a viewport width CSS pixels wide (narrower than Firefox's window allows)."""
    client = firefox.client
    client.set_window_rect(width=max(width, DESKTOP) if width >= 600 else 800, height=900)
    client.set_context(client.CONTEXT_CHROME)
    try:
        client.execute_script(
            "const b = gBrowser.selectedBrowser;"
            "for (const p of ['max-width', 'min-width']) {"
            "  if (arguments[0]) b.style.setProperty(p, arguments[0] + 'px', 'important');"
            "  else b.style.removeProperty(p); }",
            script_args=[width if width < 600 else 0],
        )
    finally:
        client.set_context(client.CONTEXT_CONTENT)
    # The window and the content area resize asynchronously.
    firefox.wait_until(f"window.innerWidth === {width}", timeout=10)


def switch_language(firefox, live_server: str, language: str) -> None:
    """Use the header's switch, as a person would: a cookie, and the preference when logged in."""
    firefox.navigate(live_server + "/")
    firefox.find("main")
    if firefox.script("return document.documentElement.lang") == language:
        return
    button = firefox.find(".language-switch button")
    assert button.get_attribute("value") == language
    button.click()
    firefox.wait_until(f"document.documentElement.lang === {language!r}", timeout=10)


# Korean wraps differently from English, so each role's pages are walked in both: English at the
# phone width (where long English words overflow first), Korean at both widths. Some 210 page
# visits with axe on each: two to three minutes on an idle machine.
WALKS = (("en", PHONE), ("ko", PHONE), ("ko", DESKTOP))


@pytest.mark.timeout(900)
def test_every_page_fits_phone_and_desktop_and_passes_axe(firefox, live_server, app, tmp_path):
    from webpush_server.demo import DEMO_PASSWORD

    ids = seed_pages(app)
    axe_source = AXE.read_text()
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path / "screens"))
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    visited = 0
    for role in ("guest", "patron", "backer", "librarian", "admin"):
        firefox.client.delete_all_cookies()
        set_width(firefox, DESKTOP)
        if role != "guest":
            log_in_firefox(firefox, live_server, ACCOUNTS[role], DEMO_PASSWORD)
        language = None
        for walk_language, width in WALKS:
            set_width(firefox, width)
            if walk_language != language:
                switch_language(firefox, live_server, walk_language)
                language = walk_language
            for path in pages_for(role, ids):
                firefox.navigate(live_server + path)
                firefox.find("main")
                visited += 1
                where = f"{role} {language} {width}px {path}"
                page_language = firefox.script("return document.documentElement.lang")
                if page_language != language:
                    problems.append(f"{where}: <html lang> is {page_language!r}")
                m = firefox.script(MEASURE, width)
                if m["scroll"] > width or m["viewport"] > width:
                    problems.append(f"{where}: scrolls to {m['scroll']} px; {m['outside']}")
                elif m["outside"]:
                    problems.append(f"{where}: cut off {m['outside']}")
                if m["hidden"]:
                    problems.append(f"{where}: overflow-x hidden on {m['hidden']}")
                if m["small"]:
                    problems.append(f"{where}: targets under 44 px {m['small']}")
                # Rows repeat one template: axe checks the first 15 of each table or list, which
                # keeps a page of 200 deliveries from taking 20 s (the layout was measured whole).
                firefox.script(TRIM_ROWS)
                firefox.client.execute_script(axe_source + "\nwindow.axe = axe;", sandbox=None)
                for violation in firefox.script(RUN_AXE, timeout=30):
                    problems.append(f"{where}: axe {violation}")
                slug = path.strip("/").replace("/", "-") or "home"
                firefox.screenshot(shots / f"{role}-{language}-{width}-{slug}.png")
    assert visited > 90
    assert not problems, "\n".join(problems)


def test_phone_menu_opens_from_the_keyboard_and_marks_the_page(firefox, live_server, login_as):
    from tests.helpers import PASSWORD

    login_as("keys@webpush-server.dev", "librarian", name="Kim Keys")
    set_width(firefox, DESKTOP)
    log_in_firefox(firefox, live_server, "keys@webpush-server.dev", PASSWORD)
    set_width(firefox, PHONE)
    firefox.navigate(live_server + "/library/holds")
    firefox.wait_until("document.querySelector('.site-header').classList.contains('js-menu')")
    assert not firefox.script("return !!document.querySelector('#site-nav').offsetParent")
    # The menu button is in the tab order of what is shown (keyboard users reach it).
    reached = firefox.script(
        """
        const order = [...document.querySelectorAll('a[href], button, input, select, textarea')]
          .filter((el) => el.offsetParent && el.tabIndex >= 0 && !el.disabled);
        return order.map((el) => el.className || el.localName).indexOf('menu-button btn btn-ghost');
        """
    )
    assert reached >= 0, "the menu button is not in the tab order"
    button = firefox.find(".menu-button")
    button.send_keys("\ue007")  # Enter on the focused button, as a keyboard user opens it
    firefox.wait_until("document.querySelector('#site-nav').classList.contains('open')")
    assert firefox.find(".menu-button").get_attribute("aria-expanded") == "true"
    current = firefox.script(
        "return [...document.querySelectorAll('#site-nav [aria-current=page]')]"
        ".map((a) => [a.textContent.trim(), a.getBoundingClientRect().height])"
    )
    assert [name for name, _ in current] == ["My holds"]
    assert all(height >= 44 for _, height in current)
    links = firefox.script(
        "return [...document.querySelectorAll('#site-nav a')].filter((a) => a.offsetParent)"
        ".map((a) => a.textContent.trim())"
    )
    assert {"Library", "My holds", "Desk", "Funding", "Notifications"} <= set(links)
    assert any(link.startswith("Account") for link in links)
    assert firefox.find("#site-nav .nav-logout button").is_displayed()
    # Escape closes it and gives focus back to the button.
    firefox.find("#site-nav a").send_keys("\ue00c")
    firefox.wait_until("!document.querySelector('#site-nav').classList.contains('open')")
    assert firefox.script("return document.activeElement.classList.contains('menu-button')")
