"""`python -m adapters.certificates`: the service on http://127.0.0.1:8300 for the demo (settings: CERTS_*)."""

from adapters.certificates import create_app

if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=8300)
