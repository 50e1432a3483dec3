"""The library: books, copies, loans and the hold queue."""

# Importing these registers the library's recipients and cron entries.
from . import jobs, notices  # noqa: F401
