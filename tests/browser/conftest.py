"""Browser fixtures: Firefox ESR pointed at the local push service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.firefox import Firefox, require_firefox


@pytest.fixture
def firefox(push_service) -> Iterator[Firefox]:
    """A headless Firefox whose push service is the local one."""
    require_firefox()
    with Firefox(push_server_url=push_service.websocket_url) as browser:
        yield browser
