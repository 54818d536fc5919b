#!/bin/sh
# One command: login and token latency with 10 k and with 1 M seeded persons (+ 10 % legal entities) on
# a scratch PostgreSQL database, under the production server, and the ratio 1M/10k of every figure.
#   bench/scale.sh [--small 10000] [--large 1000000] [--rounds 3] [--server gunicorn|granian] ...
#                  (--help for all options)
# Results: bench/results/scale-<timestamp>.txt (what it prints), .json, -explain.txt, server logs.
set -eu
cd "$(dirname "$0")/.."
exec "${VENV:-.venv}/bin/python" -m bench.scale "$@"
