# Two commands do all the set-up on a fresh machine:
#   make run   installs, migrates, seeds demo data and serves on Daphne at http://127.0.0.1:8000
#   make test  installs what the tests need and runs every check and test
# Embedded defaults: SQLite, in-memory channel layer. DATABASE_URL and REDIS_URL switch to PostgreSQL/Redis.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

# System packages the project needs, as Debian package:command pairs (the command tells whether it is there):
# espeak-ng speaks the prompts through pyttsx3, sox converts and measures audio, baresip is the real SIP phone
# the end-to-end call tests dial in with, chromium and its driver run the workbench's browser test.
SYSTEM_PACKAGES ?= espeak-ng:espeak-ng sox:sox baresip-core:baresip chromium:chromium chromium-driver:chromedriver

.PHONY: run test lint typecheck serve migrate seed lock clean python-check system-deps

python-check:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s); set PYTHON=..." % sys.version.split()[0])'

system-deps:
	@missing=""; for pc in $(SYSTEM_PACKAGES); do command -v $${pc#*:} >/dev/null 2>&1 || missing="$$missing $${pc%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.runtime: requirements.txt | python-check system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo --if-empty

run: seed
	@echo "热线系统已启动： http://$(HOST):$(PORT)/  （Ctrl+C 退出）"
	$(PY) manage.py runserver --noreload $(HOST):$(PORT)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	DJANGO_SETTINGS_MODULE=hotline.settings.test $(BIN)/mypy hotline ticketing telephony knowledge_base routing

# Test settings are set here, not left to the environment: a DJANGO_SETTINGS_MODULE in the shell would
# otherwise win over pyproject.toml.
test: $(VENV)/.dev lint typecheck
	DJANGO_SETTINGS_MODULE=hotline.settings.test $(PY) manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=hotline.settings.test $(BIN)/pytest

# Re-pin requirements*.txt from requirements/*.in in a clean virtual environment.
lock: python-check
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet -r requirements/base.in
	.lockvenv/bin/pip freeze | sort > .lock-base.txt
	.lockvenv/bin/pip install --quiet -r requirements/dev.in
	.lockvenv/bin/pip freeze | sort > .lock-all.txt
	(echo "# Pinned runtime dependencies (from requirements/base.in). Regenerate with: make lock"; cat .lock-base.txt) > requirements.txt
	(echo "# Pinned test and lint tools (from requirements/dev.in). Regenerate with: make lock"; echo "-r requirements.txt"; comm -13 .lock-base.txt .lock-all.txt) > requirements-dev.txt
	rm -rf .lockvenv .lock-base.txt .lock-all.txt

clean:
	rm -rf $(VENV) db.sqlite3 var .pytest_cache .mypy_cache .ruff_cache
