# Glideslope: every target bootstraps what it needs on a fresh machine (uv, the locked venv,
# Java for Spark, Debian chromium for the browser tests), then runs one command.
#
#   make demo    the whole loop on replayed real days
#   make test    every test layer (tests/dags unit integration services browser faults)

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
SYNCED   := $(VENV)/.synced
CHROMIUM := /usr/bin/chromium
LAYERS   := dags unit integration services browser faults
USECASE  ?= flight_delay
UI_DIR   := include/ui/model-health

# uv from PATH, else the module that `pip install uv` puts next to $(PYTHON).
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Spark's launcher uses JAVA_HOME; take it from the `java` that the `java` target checks.
JAVA_BIN := $(realpath $(shell command -v java 2>/dev/null))
ifneq ($(JAVA_BIN),)
export JAVA_HOME := $(patsubst %/bin/java,%,$(JAVA_BIN))
endif

.PHONY: help demo test $(addprefix test-,$(LAYERS)) up down status lint mlflow-ui clean distclean \
        venv java chromium ui bench

help:
	@echo "make demo        run the whole loop on replayed real days (embedded profile)"
	@echo "make test        run every test layer (set CI=true to make missing services fail, not skip)"
	@echo "make test-LAYER  one layer: $(LAYERS)"
	@echo "make up / down   start / stop Airflow (UI on http://127.0.0.1:8080) and the MLflow UI"
	@echo "make status      what runs, and where"
	@echo "make lint        ruff + mypy"
	@echo "make bench       every benchmark, one table (benchmarks/run.py; BENCH_ARGS=--quick for small sizes)"
	@echo "make ui          rebuild the committed model-health bundle (npm ci from the lockfile + vite)"
	@echo "make mlflow-ui   serve the MLflow UI in the foreground"
	@echo "make clean       stop, then delete local state (.glideslope) and caches; distclean also .venv"

# --- bootstrap --------------------------------------------------------------------------------

venv: $(SYNCED)

# Re-synced whenever the lock changes. uv compiles bytecode for the venv (tool.uv compile-bytecode),
# which matters here: PYTHONDONTWRITEBYTECODE would otherwise make every import recompile.
$(SYNCED): pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || { \
	  echo "uv not found: pip install uv"; \
	  $(PYTHON) -m pip install --quiet uv || $(PYTHON) -m pip install --quiet --user --break-system-packages uv; }
	$(UV) sync --frozen
	@# A venv made before pyspark-client was kept out lost files of pyspark/ when uv removed it
	@# (both install into that folder): reinstall pyspark when its Python side is not its own.
	@$(BIN)/python -c "import importlib.metadata as m, pyspark.version as v; \
	  raise SystemExit(v.__version__ != m.version('pyspark'))" 2>/dev/null \
	  || $(UV) sync --frozen --reinstall-package pyspark
	@touch $@

java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "Java 17 is required (Spark runs on it): apt-get install -y openjdk-17-jre-headless" >&2; exit 1; }
	@major=$$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n1); \
	 if [ -z "$$major" ] || [ "$$major" -lt 17 ]; then \
	   echo "Java 17 is required (Spark runs on it), found '$$(java -version 2>&1 | head -n1)' at $(JAVA_BIN):" \
	        "apt-get install -y openjdk-17-jre-headless and put it first on PATH" >&2; exit 1; fi

# The browser tests drive Debian's chromium (no `playwright install`, no download at test time).
chromium:
	@test -x $(CHROMIUM) || { \
	  echo "Installing Debian chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# --- the two commands -------------------------------------------------------------------------

demo: venv java
	$(BIN)/glideslope demo --usecase $(USECASE)

# Each benchmark in its own process, against its baseline in the same run; one table at the end
# (benchmarks/results/table.md). About 15 minutes on 2 cores; BENCH_ARGS="--quick" for small sizes,
# "--only parse,drift" for some of them.
bench: venv java
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

test: venv java chromium
	$(BIN)/pytest tests

$(addprefix test-,$(LAYERS)): test-%: venv java
	$(BIN)/pytest tests/$*

test-browser: chromium

# --- running it -------------------------------------------------------------------------------

up: venv java
	$(BIN)/glideslope up

down:
	@if [ -x $(BIN)/glideslope ]; then $(BIN)/glideslope down; else echo "Nothing to stop (no $(VENV))."; fi

status: venv
	@$(BIN)/glideslope status || true

mlflow-ui: venv
	$(BIN)/glideslope mlflow-ui

# The dependency audit needs PyPI's advisory data: where it cannot be reached it says so and
# does not fail (GLIDESLOPE_AUDIT_REQUIRED=true makes it fail); see docs/security.md.

# The model-health page's bundle is committed (include/glideslope/airflow/static/model-health.js), so
# nothing that runs Airflow needs Node. After editing $(UI_DIR), rebuild it with Node 20 + npm; the
# stamp beside the bundle records the sources it came from (tests/unit/test_model_health.py checks it).
ui: venv
	cd $(UI_DIR) && npm ci --no-audit --no-fund && npm run build
	$(BIN)/python -c "from pathlib import Path; from glideslope.airflow.health import BUNDLE_STAMP, \
	  ui_sources_digest; BUNDLE_STAMP.write_text(ui_sources_digest(Path('$(UI_DIR)')) + '\n')"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	@$(UV) export --frozen --all-groups --no-hashes --no-emit-project --format requirements-txt --quiet \
	  -o $(VENV)/audit-requirements.txt
	$(BIN)/python -m glideslope_local.audit $(VENV)/audit-requirements.txt

# Local state (lake, MLflow store, Feast registry, Airflow DB and logs) lives in .glideslope.
clean: down
	rm -rf .glideslope .pytest_cache .mypy_cache .ruff_cache test-results spark-warehouse metastore_db derby.log
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV)

# --- production profile (docker-compose.yaml, docs/production.md) ------------------------------

# .env for `docker compose`: .env.example with random passwords, Fernet key and JWT secret filled
# in. An existing .env is never overwritten.
.env: .env.example
	@if [ -e $@ ]; then echo "$@ exists: left as it is (compare it with .env.example)"; touch $@; else \
	  $(PYTHON) -c 'import base64, os, re, secrets; \
	  gen = {"POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(18), \
	         "MINIO_ROOT_PASSWORD": lambda: secrets.token_urlsafe(18), \
	         "AIRFLOW_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(12), \
	         "MLFLOW_TRACKING_PASSWORD": lambda: secrets.token_urlsafe(18), \
	         "MLFLOW_FLASK_SERVER_SECRET_KEY": lambda: secrets.token_urlsafe(32), \
	         "AIRFLOW_FERNET_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(), \
	         "AIRFLOW_JWT_SECRET": lambda: secrets.token_urlsafe(48)}; \
	  text = open(".env.example").read(); \
	  text = re.sub(r"^(\w+)=$$", lambda m: m.group(1) + "=" + gen[m.group(1)]() if m.group(1) in gen else m.group(0), text, flags=re.M); \
	  fd = os.open(".env", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600); os.write(fd, text.encode()); os.close(fd)'; \
	  echo "wrote $@: passwords, Fernet key and JWT secret generated (docker compose reads it)"; fi
