# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv and
# installs what it needs (once per pyproject.toml version).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
AUTH_CACHE := infra/mlflow_server/auth_cache
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(AUTH_CACHE)/pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test lint install synth graphviz

synth: $(STAMP) $(CDK)
	cd infra && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 node_modules/.bin/cdk synth --quiet

install: $(STAMP)

CDK := infra/node_modules/.bin/cdk

$(STAMP): pyproject.toml $(AUTH_CACHE)/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	# the tracking server's app (as its Dockerfile installs it), for the tests and benches that start it
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e $(AUTH_CACHE)
	rm -f $(VENV)/.installed-* && touch $@

$(CDK): infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	$(PY) -m pipeline.definition validate
	$(PY) -m pipeline.definition run --local --example-data --approve
	$(PY) -m pipeline.definition promote 1 --to production --local
	$(PY) -m pipeline.definition graph --execution latest --out .local/pipeline.mmd

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) $(CDK) graphviz
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# Graphviz's dot draws the pipeline pictures; pip cannot install it. As root with apt, install
# it; elsewhere the picture tests skip, saying so (.ci/run sets MLOPS_REQUIRE_GRAPHVIZ=1: there
# its absence fails them).
graphviz:
	@command -v dot >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; } || \
		echo "Graphviz's dot is not installed (apt-get install graphviz): the picture tests will skip"
