"""A believable demo catalogue: a few dozen books, some out on loan with queues."""

from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db
from . import services
from .models import Book

# (title, author, copies); the first ones are popular: every copy out, readers queueing.
CATALOGUE = [
    ("The Left Hand of Darkness", "Ursula K. Le Guin", 1),
    ("Pachinko", "Min Jin Lee", 2),
    ("The Vegetarian", "Han Kang", 1),
    ("Klara and the Sun", "Kazuo Ishiguro", 2),
    ("Project Hail Mary", "Andy Weir", 1),
    ("Piranesi", "Susanna Clarke", 1),
    ("The Remains of the Day", "Kazuo Ishiguro", 2),
    ("Human Acts", "Han Kang", 1),
    ("Almond", "Sohn Won-pyung", 2),
    ("Please Look After Mom", "Kyung-sook Shin", 1),
    ("The Dispossessed", "Ursula K. Le Guin", 2),
    ("Kindred", "Octavia E. Butler", 1),
    ("Parable of the Sower", "Octavia E. Butler", 2),
    ("A Wizard of Earthsea", "Ursula K. Le Guin", 3),
    ("Never Let Me Go", "Kazuo Ishiguro", 2),
    ("Convenience Store Woman", "Sayaka Murata", 2),
    ("The Old Man and the Sea", "Ernest Hemingway", 1),
    ("Beloved", "Toni Morrison", 1),
    ("One Hundred Years of Solitude", "Gabriel García Márquez", 2),
    ("The Name of the Rose", "Umberto Eco", 1),
    ("Invisible Cities", "Italo Calvino", 1),
    ("Station Eleven", "Emily St. John Mandel", 2),
    ("The Overstory", "Richard Powers", 1),
    ("Snow Crash", "Neal Stephenson", 1),
    ("Neuromancer", "William Gibson", 2),
    ("The Three-Body Problem", "Liu Cixin", 3),
    ("Kim Jiyoung, Born 1982", "Cho Nam-joo", 2),
    ("I Want to Die but I Want to Eat Tteokbokki", "Baek Se-hee", 1),
    ("The Hobbit", "J. R. R. Tolkien", 3),
    ("Middlemarch", "George Eliot", 1),
    ("Frankenstein", "Mary Shelley", 2),
    ("The Master and Margarita", "Mikhail Bulgakov", 1),
]

# How many of the popular books have every copy out, and who queues for them.
POPULAR = 6


def seed(patron_ids: list[int]) -> int:
    """Create the catalogue when the library is empty; return how many books were added."""
    if db.session.scalar(select(func.count()).select_from(Book)):
        return 0
    for index, (title, author, copies) in enumerate(CATALOGUE):
        book, copy_ids = services.add_book(title, author, None, copies)
        if index >= POPULAR or not patron_ids:
            continue
        # Every copy is out, lent to patrons in turn; the others queue for it.
        borrowers = [patron_ids[(index + k) % len(patron_ids)] for k in range(len(copy_ids))]
        for copy_id, user_id in zip(copy_ids, borrowers, strict=True):
            services.check_out(copy_id, _email(user_id))
        queue = [p for p in patron_ids if p not in borrowers][: 1 + index % 3]
        for user_id in queue:
            services.place_hold(user_id, book.id)
    return len(CATALOGUE)


def _email(user_id: int) -> str:
    from ..auth.models import User

    return db.session.get_one(User, user_id).email
