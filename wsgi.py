"""WSGI entry point for production servers: `gunicorn wsgi:app` (settings from IDP_* variables)."""

import gc

from idp.app import create_app

app = create_app()

# What exists now (modules, the app, its caches) lives as long as the process. Freezing it keeps the
# full collections that allocation churn triggers from rescanning it: those took 30-105 ms per pass
# with everything imported, a stall every few seconds under load (bench/README.md, "GC pauses").
gc.collect()
gc.freeze()
