"""What happened in the library: past-tense events carrying ids."""

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class HoldBecameReady:
    """A waiting hold was given a copy, now set aside for it."""

    hold_id: int
    copy_id: int


@dataclass(frozen=True)
class HoldExpiringSoon:
    hold_id: int


@dataclass(frozen=True)
class HoldExpired:
    hold_id: int


@dataclass(frozen=True)
class HoldMovedUp:
    """A waiting hold's place in the queue moved up."""

    hold_id: int


@dataclass(frozen=True)
class HoldCancelledByLibrary:
    """A librarian cancelled the hold (the note is on the hold)."""

    hold_id: int


@dataclass(frozen=True)
class HoldResumed:
    """A suspended hold became active again (it was suspended until that date)."""

    hold_id: int
    until: date


@dataclass(frozen=True)
class LoanRenewed:
    loan_id: int


@dataclass(frozen=True)
class LoansDue:
    """On this local day these active loans are due soon or overdue (remind-loans)."""

    day: date
    loan_ids: tuple[int, ...]
