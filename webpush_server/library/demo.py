"""A believable demo catalogue: a few dozen books, some out on loan with queues."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from ..extensions import db
from ..timeutil import utcnow
from . import services
from .models import Book, Loan

# (title, author, ISBN-13 of a real edition, copies); the first ones are popular: every copy
# out, readers queueing.
CATALOGUE = [
    ("The Left Hand of Darkness", "Ursula K. Le Guin", "9780441478125", 1),
    ("Pachinko", "Min Jin Lee", "9781455563937", 2),
    ("The Vegetarian", "Han Kang", "9781101906118", 1),
    ("Klara and the Sun", "Kazuo Ishiguro", "9780593318171", 2),
    ("Project Hail Mary", "Andy Weir", "9780593135204", 1),
    ("Piranesi", "Susanna Clarke", "9781635575637", 1),
    ("The Remains of the Day", "Kazuo Ishiguro", "9780679731726", 2),
    ("Human Acts", "Han Kang", "9781101906729", 1),
    ("Almond", "Sohn Won-pyung", "9780062961372", 2),
    ("Please Look After Mom", "Kyung-sook Shin", "9780307593931", 1),
    ("The Dispossessed", "Ursula K. Le Guin", "9780061054884", 2),
    ("Kindred", "Octavia E. Butler", "9780807083697", 1),
    ("Parable of the Sower", "Octavia E. Butler", "9781538732182", 2),
    ("A Wizard of Earthsea", "Ursula K. Le Guin", "9780547773742", 3),
    ("Never Let Me Go", "Kazuo Ishiguro", "9781400078776", 2),
    ("Convenience Store Woman", "Sayaka Murata", "9780802128256", 2),
    ("The Old Man and the Sea", "Ernest Hemingway", "9780684801223", 1),
    ("Beloved", "Toni Morrison", "9781400033416", 1),
    ("One Hundred Years of Solitude", "Gabriel García Márquez", "9780060883287", 2),
    ("The Name of the Rose", "Umberto Eco", "9780156001311", 1),
    ("Invisible Cities", "Italo Calvino", "9780156453806", 1),
    ("Station Eleven", "Emily St. John Mandel", "9780385353304", 2),
    ("The Overstory", "Richard Powers", "9780393635522", 1),
    ("Snow Crash", "Neal Stephenson", "9780553380958", 1),
    ("Neuromancer", "William Gibson", "9780441569595", 2),
    ("The Three-Body Problem", "Liu Cixin", "9780765377067", 3),
    ("Kim Jiyoung, Born 1982", "Cho Nam-joo", "9781631496707", 2),
    ("I Want to Die but I Want to Eat Tteokbokki", "Baek Se-hee", "9781639730094", 1),
    ("The Hobbit", "J. R. R. Tolkien", "9780547928227", 3),
    ("Middlemarch", "George Eliot", "9780141439549", 1),
    ("Frankenstein", "Mary Shelley", "9780141439471", 2),
    ("The Master and Margarita", "Mikhail Bulgakov", "9780141180144", 1),
]

# How many of the popular books have every copy out, and who queues for them.
POPULAR = 6
# Due dates of the demo loans, in days from today: two overdue, two due within the reminder
# window, the rest later; the last one has been renewed once.
DUE_IN = (-8, -1, 1, 2, 5, 9, 12, 26)


def seed(patron_ids: list[int]) -> int:
    """Create the catalogue when the library is empty; return how many books were added."""
    if db.session.scalar(select(func.count()).select_from(Book)):
        return 0
    for index, (title, author, isbn, copies) in enumerate(CATALOGUE):
        book, copy_ids = services.add_book(title, author, isbn, copies)
        if index >= POPULAR or not patron_ids:
            continue
        # Every copy is out, lent to patrons in turn; the others queue for it.
        borrowers = [patron_ids[(index + k) % len(patron_ids)] for k in range(len(copy_ids))]
        for copy_id, user_id in zip(copy_ids, borrowers, strict=True):
            services.check_out(copy_id, _email(user_id))
        queue = [p for p in patron_ids if p not in borrowers][: 1 + index % 3]
        for user_id in queue:
            services.place_hold(user_id, book.id)
    _spread_due_dates()
    return len(CATALOGUE)


def _spread_due_dates() -> None:
    """Give the demo loans believable due dates, so reminders and the desk have something."""
    today = services.local_day(utcnow())
    loan_ids = db.session.scalars(select(Loan.id).order_by(Loan.id)).all()
    for loan_id, days in zip(loan_ids, DUE_IN, strict=False):
        renewed = days == DUE_IN[-1]
        db.session.execute(
            update(Loan)
            .where(Loan.id == loan_id)
            .values(due_date=today + timedelta(days=days), renewals=1 if renewed else 0)
        )
    db.session.commit()


def _email(user_id: int) -> str:
    from ..auth.models import User

    return db.session.get_one(User, user_id).email
