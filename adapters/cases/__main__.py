"""`python -m adapters.cases`: the case service on http://127.0.0.1:8400 for the demo (settings: CASES_*)."""

from werkzeug.serving import run_simple

from adapters.cases import create_app

if __name__ == "__main__":
    run_simple("127.0.0.1", 8400, create_app(), threaded=True)
