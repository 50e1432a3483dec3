"""Rate limits of the funding pages and API."""

from __future__ import annotations

from ..extensions import configured_limit, limiter

# One budget for pledges, whether from the campaign page or the API.
pledge_limit = limiter.shared_limit(configured_limit("RATELIMIT_PLEDGES"), scope="pledges")
