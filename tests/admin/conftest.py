"""Fixtures of the admin tests (helpers live in admin_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from admin_helpers import AdminUser, make_user  # noqa: E402

from idp.domain.admin import ROLES  # noqa: E402


@pytest.fixture
def admins(services) -> dict[str, AdminUser]:
    """role -> an admin holding only that role; "nobody" -> a verified person with TOTP and no role."""
    users = {role: make_user(services, f"admin_{role}", i + 1, role) for i, role in enumerate(ROLES)}
    users["nobody"] = make_user(services, "not_an_admin", 50, None)
    return users
