"""`python -m adapters.catalogue`: the catalogue on 127.0.0.1:8200 with the demo items, against the provider."""

from __future__ import annotations

from werkzeug.serving import run_simple

from adapters.catalogue.app import create_app, load_demo_items, seed


def main() -> None:
    app = create_app()
    seed(app, load_demo_items())
    run_simple("127.0.0.1", 8200, app, threaded=True)


if __name__ == "__main__":
    main()
