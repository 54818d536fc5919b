"""A worker loads only what every request may need: optional parts cost memory in every process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_app_module_leaves_ldap3_requests_and_qrcode_unloaded() -> None:
    # ldap3 (only with IDP_PERSON_SOURCE=ldap) and requests (registers, back-channel logout delivery)
    # are ~10 MiB per worker together, qrcode (second-factor enrolment) ~1 MiB; they load at first use.
    code = "import sys, idp.app, idp.cli; print(sorted({'ldap3', 'requests', 'qrcode'} & set(sys.modules)))"
    root = Path(__file__).resolve().parents[2]
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
