"""WSGI entry point for production servers: `gunicorn wsgi:app` (settings from IDP_* variables)."""

from idp.app import create_app

app = create_app()
