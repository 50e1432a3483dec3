"""What each JSON view takes and returns, for the OpenAPI document (GET /api/openapi.json).

Each JSON view carries its contract as an attribute set by ``@documented(...)``: the request
body, query and response models (pydantic) and how the caller authenticates. Nothing is
registered at import time; service_api/openapi.py walks ``app.url_map`` and reads the
attributes, and a test fails when an ``/api/`` route has none. Where a view validates with the
same model (the service API), the document cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import BaseModel

F = TypeVar("F", bound=Callable)
Auth = Literal["session", "bearer", "none", "optional-session"]
ATTRIBUTE = "__apidoc__"


@dataclass(frozen=True)
class Doc:
    """The documented contract of one view."""

    summary: str
    responses: Mapping[int, type[BaseModel] | str | None]
    request: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    auth: Auth = "session"
    tags: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # request header: description
    errors: tuple[int, ...] = ()


def documented(
    summary: str,
    *,
    responses: Mapping[int, type[BaseModel] | str | None],
    request: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    auth: Auth = "session",
    tags: tuple[str, ...] = (),
    headers: Mapping[str, str] | None = None,
    errors: tuple[int, ...] = (),
) -> Callable[[F], F]:
    """Attach a view's contract: its summary, bodies, responses (status: model) and auth.

    A response given as a string is a media type with no JSON schema (text/event-stream);
    None is an empty response (204). errors lists the error statuses beyond the usual ones.
    """
    doc = Doc(summary, responses, request, query, auth, tags, headers or {}, errors)

    def attach(view: F) -> F:
        setattr(view, ATTRIBUTE, doc)
        return view

    return attach


def doc_of(view: Callable) -> Doc | None:
    """Return the contract attached to view (through functools.wraps), if any."""
    return getattr(view, ATTRIBUTE, None)
