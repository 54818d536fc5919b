"""Settings come from IDP_* variables once, are validated, and are frozen."""

from __future__ import annotations

import dataclasses

import pytest

from idp.settings import Settings


def test_defaults_are_the_embedded_deployment():
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith(
        "var/idp.sqlite3"
    )
    assert settings.redis_url is None
    assert settings.code_ttl <= 60 and settings.access_token_ttl == 300


def test_values_are_read_and_typed():
    settings = Settings.from_env(
        {
            "IDP_ISSUER": "https://id.gov.example",
            "IDP_DATABASE_URL": "postgresql+psycopg://idp@db/idp",
            "IDP_REDIS_URL": "redis://cache:6379/0",
            "IDP_ACCESS_TOKEN_TTL": "600",
            "IDP_ALLOW_PRIVATE_NETWORK": "true",
        }
    )
    assert settings.issuer == "https://id.gov.example" and settings.secure_cookies
    assert settings.access_token_ttl == 600 and settings.allow_private_network is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.issuer = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IDP_ISSUER": "idp.example"}, "IDP_ISSUER"),
        ({"IDP_ISSUER": "https://idp.example/"}, "IDP_ISSUER"),
        ({"IDP_CODE_TTL": "120"}, "IDP_CODE_TTL"),
        ({"IDP_ACCESS_TOKEN_TTL": "five"}, "integer"),
        ({"IDP_LOGOUT_WORKER": "maybe"}, "true or false"),
        ({"IDP_KEY_ROTATION_OVERLAP": "10"}, "OVERLAP"),
        ({"IDP_REDIS_SENTINELS": "s:26379", "IDP_REDIS_CLUSTER_NODES": "n:6379"}, "exclude each other"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_acr_levels_are_three_distinct_names():
    assert Settings.from_env({"IDP_ACR_LEVELS": "a b c"}).acr_levels.split() == ["a", "b", "c"]
    for bad in ("a b", "a a b", "a b c d"):
        with pytest.raises(ValueError, match="IDP_ACR_LEVELS"):
            Settings.from_env({"IDP_ACR_LEVELS": bad})
