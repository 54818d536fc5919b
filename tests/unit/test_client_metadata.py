"""Client metadata checks that need no database: redirect URIs, including unreadable ones."""

from __future__ import annotations

import pytest

from idp.services.clients import ClientMetadataError, validate_client_metadata

BASE = {"client_id": "x", "redirect_uris": ["https://ok.example/cb"]}


@pytest.mark.parametrize(
    "uri",
    ["http://[::1/cb", "https://[zz]/cb", "ftp://a.example/cb", "https://a.example/cb#frag", "/relative"],
)
def test_unreadable_or_unsafe_redirect_uris_are_metadata_errors(uri):
    with pytest.raises(ClientMetadataError, match="redirect_uris"):
        validate_client_metadata({**BASE, "redirect_uris": [uri]})


def test_http_is_allowed_for_loopback_and_for_the_providers_own_origin():
    validate_client_metadata({**BASE, "redirect_uris": ["http://127.0.0.1:8001/cb"]})
    with pytest.raises(ClientMetadataError, match="https"):
        validate_client_metadata({**BASE, "redirect_uris": ["http://idp.test/admin/callback"]})
    checked = validate_client_metadata(
        {**BASE, "redirect_uris": ["http://idp.test/admin/callback"]}, own_origin="http://idp.test"
    )
    assert checked["client_metadata"]["redirect_uris"] == ["http://idp.test/admin/callback"]
    with pytest.raises(ClientMetadataError):  # the same host name as a prefix is not the same origin
        validate_client_metadata(
            {**BASE, "redirect_uris": ["http://idp.test.evil.example/cb"]}, own_origin="http://idp.test"
        )


def test_a_client_name_longer_than_its_column_is_refused():
    validate_client_metadata({**BASE, "client_name": "名" * 200})
    with pytest.raises(ClientMetadataError, match="client_name"):
        validate_client_metadata({**BASE, "client_name": "名" * 201})


def test_the_providers_own_origin_still_needs_a_valid_uri_without_fragment():
    with pytest.raises(ClientMetadataError):
        validate_client_metadata(
            {**BASE, "redirect_uris": ["http://idp.test/admin/callback#x"]}, own_origin="http://idp.test"
        )
