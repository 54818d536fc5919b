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
	@echo
	@echo "  Provider:     http://127.0.0.1:5000  (discovery: /.well-known/openid-configuration)"
	@echo "  Catalogue:    http://127.0.0.1:8200  (item catalogue: start the story here, see README \"The story in a browser\")"
	@echo "  Certificates: http://127.0.0.1:8300  (e-certificates)"
	@echo "  Cases:        http://127.0.0.1:8400  (case service: apply at /apply/01001530000000010000)"
	@echo "  Demo portal:  http://127.0.0.1:8001  (a relying party: sign in there)"
	@echo "  Registers:    http://127.0.0.1:8100  (reference population and enterprise registers)"
	@echo "  Demo logins:  zhangsan / Zhangsan#2026   (or ID number 410105198503121235, or phone 13800000001;"
	@echo "                                            legal representative of 示例科技有限公司 91350100M000100Y43)"
	@echo "                lisi     / Lisi#20260101   (agent of that company: cases:apply certificates:read)"
	@echo "  Admin console: http://127.0.0.1:5000/admin/  admin / Admin#2026-demo (super admin), auditor / Auditor#2026-demo"
	@echo "                (admins enrol a TOTP second factor at their first sign-in)"
	@echo "  Demo clients: see demo/seed.json (provisioned below, once the registers answer)"
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
