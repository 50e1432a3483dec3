"""The translation catalogs: compile translations/*.po to .mo, and pick out the JS strings.

Only the .po files are committed. An app compiles a catalog when its .mo is missing or older
than its .po, so a fresh clone's `make run` and `make test` work without a build step: beside
the .po when the checkout is writable, else in the instance folder.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("ko", "en")
# English is the source language: its text is the msgids, so only these have catalogs.
TRANSLATED = ("ko",)
SOURCE = Path(__file__).resolve().parents[2] / "translations"
DOMAIN = "messages"


def po_path(language: str, source: Path = SOURCE) -> Path:
    """Return where language's catalog source lives."""
    return source / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(language: str, source: Path = SOURCE) -> Catalog:
    """Parse language's .po file."""
    with open(po_path(language, source), "rb") as handle:
        return read_po(handle, locale=language)


def compiled_directory(instance_path: str, source: Path = SOURCE) -> Path:
    """Return a translations directory holding an up-to-date .mo for every catalog."""
    try:
        _compile_all(source, source)
        return source
    except OSError:
        # A read-only checkout (an installed slug): compile into the instance folder.
        target = Path(instance_path) / "translations"
        _compile_all(source, target)
        return target


def _compile_all(source: Path, target: Path) -> None:
    for language in TRANSLATED:
        po = po_path(language, source)
        mo = target / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        catalog = read_catalog(language, source)
        # Written aside, then renamed: gunicorn workers and test apps may compile at once.
        handle, temporary = tempfile.mkstemp(dir=mo.parent, suffix=".mo.tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                # Fuzzy entries are not translations: gettext falls back to the English.
                write_mo(out, catalog, use_fuzzy=False)
            os.replace(temporary, mo)
        except BaseException:
            os.unlink(temporary)
            raise


def js_catalogs(source: Path = SOURCE) -> dict[str, dict[str, str | list[str]]]:
    """Return, per language, the translations of strings that static/ uses (for t() in JS).

    A singular message maps to its text, a plural one (keyed by its singular) to its forms.
    English maps to nothing: t() shows the msgid. Parsed once per .po version per process
    (the suite makes hundreds of apps).
    """
    stamps = tuple(po_path(language, source).stat().st_mtime_ns for language in TRANSLATED)
    return _js_catalogs(source, stamps)


@functools.lru_cache(maxsize=4)
def _js_catalogs(source: Path, _stamps: tuple[int, ...]) -> dict[str, dict[str, str | list[str]]]:
    catalogs: dict[str, dict[str, str | list[str]]] = {"en": {}}
    for language in TRANSLATED:
        entries: dict[str, str | list[str]] = {}
        for message in read_catalog(language, source):
            if not message.id or message.fuzzy or not message.string:
                continue
            if not any(path.startswith("static/") for path, _line in message.locations):
                continue
            if isinstance(message.id, tuple | list):
                forms = [str(form) for form in message.string]
                if all(forms):
                    entries[str(message.id[0])] = forms
            else:
                entries[str(message.id)] = str(message.string)
        catalogs[language] = entries
    return catalogs
