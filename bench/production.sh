#!/bin/sh
# One command: the provider under its production server (gunicorn or granian) on core 0, every
# workload from core 1, a fresh PostgreSQL database and Redis prefix, argon2id timed alongside.
#   bench/production.sh [--server gunicorn|granian] [--workers N] [--threads T] [--duration S]
#                       [--profile client_credentials,refresh] ...   (--help for all options)
# Results: bench/results/<server>-<timestamp>.json (+ .server.log, + .folded profiles).
set -eu
cd "$(dirname "$0")/.."
exec "${VENV:-.venv}/bin/python" -m bench.production "$@"
