"""The account API's shapes, for the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Me(BaseModel):
    """The logged-in user."""

    id: int
    email: str
    name: str
    role: Literal["patron", "librarian", "admin"]
