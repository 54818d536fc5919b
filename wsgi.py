"""WSGI entry point for production servers: `gunicorn wsgi:app` (settings from IDP_* variables)."""

import gc
import sys

from idp.app import create_app
from idp.store.migrate import SchemaNotCurrent

try:
    app = create_app()
except SchemaNotCurrent as exc:
    # One line for the operator, no traceback; exit status 3 is gunicorn's "worker failed to boot",
    # which stops the server instead of respawning the worker forever.
    sys.stderr.write(f"idp: {exc}\n")
    sys.exit(3)

# What exists now (modules, the app, its caches) lives as long as the process. Freezing it keeps the
# full collections that allocation churn triggers from rescanning it: with everything imported, one
# took 30-105 ms, a stall for every request in flight (README.md, "Performance").
gc.collect()
gc.freeze()
