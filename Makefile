# Two commands matter: `make run` (the provider with demo data on SQLite) and `make test` (everything CI runs).
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: run test lint system-packages test-sqlite test-postgres bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m idp migrate
	$(PY) -m idp provision demo/seed.json
	@echo
	@echo "  Demo portal:  http://127.0.0.1:8001  (a relying party: sign in there)"
	@echo "  Provider:     http://127.0.0.1:5000  (discovery: /.well-known/openid-configuration)"
	@echo "  Registers:    http://127.0.0.1:8100  (reference population and enterprise registers)"
	@echo "  Demo logins:  zhangsan / Zhangsan#2026   (or ID number 410105198503121235, or phone 13800000001)"
	@echo "                lisi     / Lisi#20260101"
	@echo "  Demo clients: see demo/seed.json"
	@echo
	IDP_LOGOUT_WORKER=true IDP_ALLOW_PRIVATE_NETWORK=true $(PY) -m demo.run

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check idp admin adapters tests demo registers bench wsgi.py
	$(VENV)/bin/ruff format --check idp admin adapters tests demo registers bench wsgi.py
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

system-packages:
	bash scripts/install-system-packages.sh

test-sqlite: $(VENV)/.installed
	IDP_TEST_BACKEND=sqlite $(PY) -m pytest

test-postgres: $(VENV)/.installed
	IDP_TEST_BACKEND=postgres $(PY) -m pytest

test: system-packages lint test-sqlite test-postgres

bench: $(VENV)/.installed
	bash bench/production.sh

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
