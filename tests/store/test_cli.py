"""The operator CLI: each command works against the configured database and reports errors plainly."""

from __future__ import annotations

import json

from click.testing import CliRunner

from idp.cli import cli


def test_create_client_prints_a_generated_secret_once(run, services):
    result = run(
        "create-client", "--client-id", "svc", "--grant-type", "client_credentials", "--scope", "api"
    )
    assert result.exit_code == 0, result.output
    secret = result.output.split("secret=")[1].strip()
    assert len(secret) >= 43
    client = services.clients.get("svc")
    assert client is not None and services.clients.verify_secret(client, secret)
    again = run("create-client", "--client-id", "svc", "--grant-type", "client_credentials", "--scope", "api")
    assert "secret=" not in again.output


def test_create_client_refuses_bad_metadata_without_a_traceback(run):
    result = run("create-client", "--client-id", "web", "--redirect-uri", "http://evil.example/cb")
    assert result.exit_code != 0 and "https" in result.output and "Traceback" not in result.output


def test_create_person_then_login(run, services):
    result = run(
        "create-person", "--username", "wangwu", "--name", "王五", input="long enough pw\nlong enough pw\n"
    )
    assert result.exit_code == 0, result.output
    assert services.persons.authenticate("wangwu", "long enough pw") is not None


def test_rotate_and_list_keys(run, services):
    services.keys.ensure_keys()
    result = run("rotate-keys", "--alg", "ES256")
    assert result.exit_code == 0 and result.output.startswith("new key ")
    listed = [json.loads(line) for line in run("list-keys").output.splitlines()]
    states = sorted(k["state"] for k in listed if k["alg"] == "ES256")
    assert states == ["active", "pending"]


def test_deliver_logouts_reports_counts(run):
    result = run("deliver-logouts")
    assert result.exit_code == 0 and "delivered=0 failed=0" in result.output


def test_purge_expired_deletes_only_long_expired_tokens(run, services):
    import time

    from idp.domain.models import AuthContext

    now = int(time.time())
    for name, expires_at in (("old", now - 7200), ("recent", now - 60), ("live", now + 300)):
        services.tokens.save(
            client_id="portal",
            scope="openid",
            context=AuthContext(person_id=None, grant_id=f"grant-{name}"),
            access_token=f"access-{name}",
            access_expires_at=expires_at,
            refresh_token=f"refresh-{name}",
            refresh_expires_at=expires_at,
        )
    services.ephemeral.add("purge-probe", "1", 1)
    time.sleep(1.1)
    result = run("purge-expired", "--older-than", "3600", "--batch", "1")
    assert result.exit_code == 0
    assert result.output.startswith("tokens=2 ")  # the access and refresh rows of "old", one per batch
    assert services.tokens.find("access-old") is None and services.tokens.find("refresh-old") is None
    assert services.tokens.find("access-recent") is not None
    assert services.tokens.find("refresh-live") is not None
    assert services.ephemeral.get("purge-probe") is None
    assert run("purge-expired").output.startswith("tokens=0 ")


def test_purge_expired_refuses_a_negative_age(run):
    result = run("purge-expired", "--older-than", "-5")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_migrate_is_idempotent(run):
    assert run("migrate").exit_code == 0
    assert "up to date" in run("migrate").output


def test_bad_settings_are_a_clear_error(run):
    result = CliRunner().invoke(cli, ["migrate"], env={"IDP_ISSUER": "not-a-url"})
    assert result.exit_code != 0 and "IDP_ISSUER" in result.output


def test_notifications_shows_the_newest_messages(run, services):
    services.notifier.send("a@example.cn", "first", "body one")
    services.notifier.send("b@example.cn", "second", "http://idp.test/password/reset/abc")
    result = run("notifications")
    assert result.exit_code == 0, result.output
    assert result.output.index("first") < result.output.index("second")
    assert "http://idp.test/password/reset/abc" in result.output
    only = run("notifications", "--to", "a@example.cn")
    assert "body one" in only.output and "second" not in only.output


def test_unlock_login(run, services):
    for _ in range(10):
        services.throttle.record_failure("zhangsan", "192.0.2.1")
    assert services.throttle.is_locked("zhangsan")
    assert run("unlock-login", "zhangsan").exit_code == 0
    assert not services.throttle.is_locked("zhangsan")


def test_grant_role_names_the_first_super_admin(run, services):
    person = services.persons.upsert(
        {"username": "chief", "password": "long enough pw", "id_number": "440305199207182464"}
    )
    result = run("grant-role", "440305199207182464", "super_admin")
    assert result.exit_code == 0 and person.id in result.output
    assert services.admin.roles_of(person.id) == {"super_admin"}
    listed = run("list-admins")
    assert "chief" in listed.output and "super_admin" in listed.output
    refused = run("grant-role", "chief", "auditor")  # separation of duties
    assert refused.exit_code != 0 and "auditor role cannot be combined" in refused.output
    unknown = run("grant-role", "nobody-here", "platform_admin")
    assert unknown.exit_code != 0 and "no such person" in unknown.output
    assert run("grant-role", "chief", "root").exit_code != 0
