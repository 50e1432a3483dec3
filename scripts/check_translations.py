"""Check that the Korean catalog translates every string the app shows; or update it.

    python scripts/check_translations.py           # `make lint`: exit 1 listing what is missing
    python scripts/check_translations.py --update  # `make messages`: extract, then merge into ko

Strings come from `pybabel extract` over babel.cfg (Python, Jinja templates, static/ scripts).
A message is missing when the catalog lacks it, leaves it empty (any plural form) or marks it
fuzzy; a translation whose placeholders differ from the English is an error too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
LANGUAGES = ("ko",)
# gettext and ngettext are Babel's defaults; lazy_gettext is Flask-Babel's; t and tn are
# static/js/i18n.js's.
KEYWORDS = ("lazy_gettext", "lazy_ngettext:1,2", "t", "tn:1,2")
PYBABEL = Path(sys.executable).with_name("pybabel")


def extract(output: Path) -> None:
    """Write every translatable string of the checkout to output (a .pot)."""
    command = [str(PYBABEL), "--quiet", "extract", "-F", "babel.cfg"]
    for keyword in KEYWORDS:
        command += ["-k", keyword]
    # File names without line numbers and sorted by msgid: an edit elsewhere in a file does
    # not touch the catalog, and two branches adding strings rarely conflict.
    command += ["--add-location=file", "--sort-output", "--no-wrap", "-o", str(output), "."]
    subprocess.run(command, cwd=ROOT, check=True)


def update(template: Path) -> None:
    """Merge the extracted strings into each language's catalog (new ones untranslated)."""
    for language in LANGUAGES:
        po = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
        action = "update" if po.exists() else "init"
        command = [str(PYBABEL), "--quiet", action, "-i", str(template), "-d", str(TRANSLATIONS)]
        command += ["-l", language, "--no-wrap"]
        if action == "update":
            command += ["--ignore-obsolete", "--ignore-pot-creation-date"]
        subprocess.run(command, cwd=ROOT, check=True)


def problems(template: Path, language: str) -> list[str]:
    """Return one line per extracted message language's catalog does not translate."""
    with open(template, "rb") as handle:
        wanted = read_po(handle)
    po = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return [f"{po.relative_to(ROOT)}: missing (run `make messages`)"]
    with open(po, "rb") as handle:
        catalog = read_po(handle, locale=language)
    found = []
    for message in wanted:
        if not message.id:
            continue
        where = ", ".join(sorted({path for path, _line in message.locations}))
        key = message.id[0] if isinstance(message.id, tuple | list) else message.id
        have = catalog.get(message.id)
        if have is None:
            found.append(f"{language}: untranslated {key!r} ({where})")
        elif have.fuzzy:
            found.append(f"{language}: fuzzy {key!r} ({where})")
        elif not have.string or (isinstance(have.string, tuple | list) and not all(have.string)):
            found.append(f"{language}: untranslated {key!r} ({where})")
    for message, errors in catalog.check():
        for error in errors:
            found.append(f"{language}: {message.id!r}: {error}")
    return found


def main() -> int:
    """Check (or with --update, refresh) the catalogs; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="extract and merge into ko")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        template = Path(folder) / "messages.pot"
        extract(template)
        if args.update:
            update(template)
        found = [line for language in LANGUAGES for line in problems(template, language)]
    for line in found:
        print(line)
    if found:
        print(
            f"{len(found)} message(s) need a translation: edit "
            "translations/ko/LC_MESSAGES/messages.po (README: Translations).",
            file=sys.stderr,
        )
        return 0 if args.update else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
