"""Fixtures shared by the storage-level tests."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from idp.cli import cli


@pytest.fixture
def run(settings, services):
    """Invoke the operator CLI against the test database, as an operator would."""
    env = {
        "IDP_ISSUER": settings.issuer,
        "IDP_DATABASE_URL": settings.database_url,
        "IDP_KEY_DIR": settings.key_dir,
        "IDP_REDIS_PREFIX": settings.redis_prefix,
        "IDP_PASSWORD_TIME_COST": "1",
        "IDP_PASSWORD_MEMORY_KIB": "1024",
    }
    if settings.redis_url:
        env["IDP_REDIS_URL"] = settings.redis_url
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(cli, list(args), env=env, input=input, catch_exceptions=False)

    return invoke
