# Two commands: `make run` starts the whole product, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint check-migrations check-translations messages format bench clean

$(BIN)/activate:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "webpush-server needs Python 3.11 or newer"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || \
	  { echo "python venv is missing: apt-get install python3-venv"; exit 1; }

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# bench/ imports what the suite does not (psutil; pywebpush and aiohttp are in dev too).
$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	@touch $@

run: $(VENV)/.installed
	$(BIN)/python -m webpush_server.devrun

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/check_translations.py

# Every string the code, templates and scripts show has a Korean translation (none fuzzy).
check-translations: $(VENV)/.installed
	$(BIN)/python scripts/check_translations.py

# The translator's step (README "Translations"): extract every string into the Korean catalog,
# new ones empty (or fuzzy where an old one is close); then translate, and `make lint` checks.
# Apps compile the .mo themselves when it is older than the .po (webpush_server/i18n).
messages: $(VENV)/.installed
	$(BIN)/python scripts/check_translations.py --update

# Models and migrations agree: upgrade a throwaway database, then let Alembic compare it with
# the models (`flask db check`). SQLite in a temp instance folder, so nothing touches instance/;
# CHECK_DATABASE_URL names an empty database to use instead (CI's PostgreSQL). DATABASE_URL is
# ignored here: a check must never upgrade a real database.
check-migrations: $(VENV)/.installed
	@tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
	unset DATABASE_URL FLASK_SQLALCHEMY_DATABASE_URI && \
	if [ -n "$${CHECK_DATABASE_URL:-}" ]; then export DATABASE_URL="$$CHECK_DATABASE_URL"; fi && \
	export INSTANCE_PATH="$$tmp" VAPID_SUBJECT="$${VAPID_SUBJECT:-mailto:ops@webpush-server.dev}" && \
	$(BIN)/flask --app wsgi db upgrade && \
	$(BIN)/flask --app wsgi db check

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The quick version of every bench (a few minutes; each prints its figures and a RESULT or
# summary line, exits 0 after a good run and leaves no process behind). The full runs and
# their options are in bench/README.md. delivery.py needs nginx and node/npm (see there).
bench: $(VENV)/.bench-installed
	$(BIN)/python bench/delivery.py --n 1000 --rounds 1 --naive 200 --node 500
	$(BIN)/python bench/latency.py --samples 50
	$(BIN)/python bench/live.py --sockets 200 --rounds 2 --singles 50
	$(BIN)/python bench/coupons.py --coupons 20000 --expiring 2000 --users 2000
	$(BIN)/python bench/api.py --requests 40 --concurrency 4 --rounds 1
	$(BIN)/python bench/chaos.py --n 500 --worker-kills 1 --redis-kills 1

clean:
	rm -rf $(VENV) *.egg-info
