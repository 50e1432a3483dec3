"""Browser families from User-Agent strings, for the subscriptions figure."""

from __future__ import annotations

# Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari", iOS browsers say "Safari".
_FAMILIES = (
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chrome"),
    ("Safari/", "Safari"),
)


def browser_family(user_agent: str | None) -> str:
    """Return the browser family a User-Agent names ("Other", "Unknown" when empty)."""
    if not user_agent:
        return "Unknown"
    for marker, family in _FAMILIES:
        if marker in user_agent:
            return family
    return "Other"
