"""The CLI's initial access token commands: issue (value printed once), list (never the value), revoke."""

from __future__ import annotations

import json

import pytest


def issued(result) -> tuple[str, str]:
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("initial token ")
    return line.split()[2], line.split("token=")[1].strip()


def test_issue_prints_a_usable_token_once(run, services, client):
    token_id, value = issued(
        run("issue-initial-token", "--label", "电子税务局", "--ttl", "3600", "--max-uses", "2")
    )
    assert len(value) >= 43
    [token] = services.registration.list_initial_tokens()
    assert token.id == token_id and token.label == "电子税务局" and token.max_uses == 2
    assert token.created_by == "cli" and token.expires_at - token.created_at == 3600
    response = client.post(
        "/connect/register",
        json={"redirect_uris": ["https://tax.example/cb"]},
        headers={"Authorization": f"Bearer {value}"},
    )
    assert response.status_code == 201, response.get_json()
    listed = [json.loads(line) for line in run("list-initial-tokens").output.splitlines()]
    assert [(t["id"], t["uses"], t["active"]) for t in listed] == [(token_id, 1, True)]
    assert value not in run("list-initial-tokens", "--all").output


def test_list_hides_inactive_tokens_unless_all(run, services):
    first, _ = issued(run("issue-initial-token", "--label", "first"))
    second, _ = issued(run("issue-initial-token", "--label", "second"))
    result = run("revoke-initial-token", first)
    assert result.exit_code == 0 and f"revoked {first}" in result.output
    active = [json.loads(line)["id"] for line in run("list-initial-tokens").output.splitlines()]
    assert active == [second]
    everything = {
        json.loads(line)["id"]: json.loads(line)
        for line in run("list-initial-tokens", "--all").output.splitlines()
    }
    assert set(everything) == {first, second}
    assert everything[first]["active"] is False and everything[first]["revoked_at"] is not None


def test_revoking_an_unknown_or_revoked_token_is_a_clear_error(run):
    token_id, _ = issued(run("issue-initial-token"))
    assert run("revoke-initial-token", token_id).exit_code == 0
    for target in (token_id, "0123456789abcdef", "not an id"):
        result = run("revoke-initial-token", target)
        assert (
            result.exit_code != 0 and "no initial token" in result.output and "Traceback" not in result.output
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ttl", "10"), "lifetime"),
        (("--ttl", "99999999"), "lifetime"),
        (("--max-uses", "0"), "max_uses"),
        (("--max-uses", "5000"), "max_uses"),
        (("--label", "x" * 300), "label"),
        (("--ttl", "soon"), "soon"),
    ],
)
def test_issue_refuses_bad_options_without_a_traceback(run, services, args, message):
    result = run("issue-initial-token", *args)
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    assert services.registration.list_initial_tokens(include_inactive=True) == []


def test_issuance_and_revocation_are_audited_without_the_value(run, services):
    token_id, value = issued(run("issue-initial-token", "--label", "portal team"))
    run("revoke-initial-token", token_id)
    assert services.audit.flush(10)
    events = [json.loads(line) for line in services.audit.export("jsonl")]
    kinds = {e["event"]: e for e in events}
    assert kinds["initial_token.issued"]["actor"] == "cli"
    assert json.loads(kinds["initial_token.issued"]["details"])["token_id"] == token_id
    assert json.loads(kinds["initial_token.revoked"]["details"])["token_id"] == token_id
    assert value not in "\n".join(services.audit.export("jsonl"))
