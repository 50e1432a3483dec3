"""What happened in the library: past-tense events carrying ids."""

from dataclasses import dataclass


@dataclass(frozen=True)
class HoldBecameReady:
    hold_id: int


@dataclass(frozen=True)
class HoldExpiringSoon:
    hold_id: int


@dataclass(frozen=True)
class HoldExpired:
    hold_id: int
