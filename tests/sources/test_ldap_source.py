"""The LDAP source against a real slapd: search with the service account, bind as the person, fail closed."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from source_servers import PEOPLE_DN, READER_DN, READER_PASSWORD, SUFFIX, free_port

from idp.sources.base import PersonSource, SourcePerson, SourceUnavailable
from idp.sources.ldap import LdapSource

ZHANGSAN_ID = "410105198503121235"


def test_is_a_person_source(ldap_source_factory):
    source: PersonSource = ldap_source_factory()
    assert source.name == "ldap"


@pytest.mark.parametrize("identifier", ["zhangsan", "13800000001", ZHANGSAN_ID, " zhangsan "])
def test_authenticate_by_uid_mobile_or_id_number(ldap_source_factory, identifier):
    person = ldap_source_factory().authenticate(identifier, "Zhangsan#2026")
    assert isinstance(person, SourcePerson)
    assert person.source == "ldap"
    assert person.username == "zhangsan"
    assert person.name == "张三"
    assert person.id_number == ZHANGSAN_ID
    assert person.phone_number == "13800000001"
    assert person.email == "zhangsan@gov.example"
    assert len(person.source_id) == 36  # entryUUID: stable across renames


def test_the_same_person_has_one_source_id_whatever_the_identifier(ldap_source_factory):
    source = ldap_source_factory()
    ids = {
        source.authenticate(i, "Zhangsan#2026").source_id for i in ("zhangsan", "13800000001", ZHANGSAN_ID)
    }
    assert len(ids) == 1


def test_wrong_password_is_refused(ldap_source_factory):
    source = ldap_source_factory()
    assert source.authenticate("zhangsan", "Zhangsan#2027") is None
    assert source.authenticate("zhangsan", "Lisi#20260101") is None  # another person's password


def test_unknown_person_is_refused(ldap_source_factory):
    assert ldap_source_factory().authenticate("nobody", "Zhangsan#2026") is None


def test_empty_password_is_refused_even_though_the_server_accepts_unauthenticated_binds(
    ldap_source_factory, slapd
):
    ldapwhoami = shutil.which("ldapwhoami")
    if ldapwhoami:  # the hazard is real on this server: a DN with an empty password binds (anonymously)
        done = subprocess.run(
            [ldapwhoami, "-x", "-H", slapd.url, "-D", f"uid=zhangsan,{PEOPLE_DN}", "-w", ""],
            capture_output=True,
            text=True,
            timeout=5,
        )
        assert done.returncode == 0, done.stderr
    source = ldap_source_factory()
    assert source.authenticate("zhangsan", "") is None
    assert source.authenticate(f"uid=zhangsan,{PEOPLE_DN}", "") is None


def test_a_blank_identifier_is_refused(ldap_source_factory):
    source = ldap_source_factory()
    assert source.authenticate("", "Zhangsan#2026") is None
    assert source.authenticate("   ", "Zhangsan#2026") is None
    assert source.lookup("") is None


@pytest.mark.parametrize(
    "identifier",
    [
        "*",
        "zhang*",
        "*)(uid=*",
        ")(uid=*",
        "zhangsan)(uid=*",
        "*)(|(uid=*",
        "zhangsan\\",
        "\x00",
        "(uid=zhangsan)",
    ],
)
def test_filter_injection_is_refused(ldap_source_factory, identifier):
    source = ldap_source_factory()
    assert source.authenticate(identifier, "Zhangsan#2026") is None
    assert source.lookup(identifier) is None


def test_an_ambiguous_identifier_logs_nobody_in(ldap_source_factory):
    source = ldap_source_factory()
    assert source.authenticate("13900000009", "Twin#1") is None  # two entries share this mobile number
    assert source.lookup("13900000009") is None
    assert source.authenticate("twin1", "Twin#1") is not None


def test_lookup(ldap_source_factory):
    source = ldap_source_factory()
    person = source.lookup("440305199207182464")
    assert person is not None
    assert (person.username, person.name, person.phone_number) == ("lisi", "李四", "13800000002")
    assert source.lookup("nobody") is None


def test_attribute_mapping_and_id_attribute_are_configurable(ldap_source_factory):
    source = ldap_source_factory(
        user_filter="(&(objectClass=inetOrgPerson)(mail={identifier}))",
        attributes={"uid": "username", "sn": "name"},
        id_attribute=None,
    )
    person = source.authenticate("lisi@gov.example", "Lisi#20260101")
    assert person is not None
    assert person.source_id == f"uid=lisi,{PEOPLE_DN}"
    assert (person.username, person.name, person.email, person.id_number) == ("lisi", "李", None, None)


def test_bad_configuration_is_refused_at_construction():
    with pytest.raises(ValueError, match="identifier"):
        LdapSource("ldap://127.0.0.1:1", SUFFIX, None, None, user_filter="(uid=x)")
    with pytest.raises(ValueError, match="password_hash"):
        LdapSource("ldap://127.0.0.1:1", SUFFIX, None, None, attributes={"userPassword": "password_hash"})


def test_wrong_service_password_is_unavailable_with_a_clear_message(ldap_source_factory):
    source = ldap_source_factory(bind_password="not-the-reader-secret")
    with pytest.raises(SourceUnavailable, match="refused the service account"):
        source.authenticate("zhangsan", "Zhangsan#2026")


def test_a_wrong_base_dn_is_unavailable_with_a_clear_message(ldap_source_factory):
    source = ldap_source_factory(base_dn="ou=nowhere,dc=gov,dc=example")
    with pytest.raises(SourceUnavailable, match="base DN .* does not exist"):
        source.authenticate("zhangsan", "Zhangsan#2026")


def test_anonymous_search_where_the_directory_hides_everything_is_unavailable(ldap_source_factory):
    # This directory lets only the service account read entries: a source configured without it is
    # misconfigured, and says so instead of answering "no such person".
    source = ldap_source_factory(bind_dn=None, bind_password=None)
    with pytest.raises(SourceUnavailable, match="cannot read it"):
        source.authenticate("zhangsan", "Zhangsan#2026")


def test_tls_verifies_the_server_certificate_and_name(tls_slapd):
    options = {"start_tls": tls_slapd.tls == "starttls", "timeout": 2.0}
    trusted = LdapSource(
        tls_slapd.url, SUFFIX, READER_DN, READER_PASSWORD, ca_certs_file=tls_slapd.ca_file, **options
    )
    assert trusted.authenticate("zhangsan", "Zhangsan#2026") is not None
    # Without the test CA the certificate is not trusted (ldap3's own default would not verify at all).
    untrusted = LdapSource(tls_slapd.url, SUFFIX, READER_DN, READER_PASSWORD, **options)
    with pytest.raises(SourceUnavailable, match="(?i)certificate"):
        untrusted.authenticate("zhangsan", "Zhangsan#2026")
    # The certificate names 127.0.0.1, not localhost.
    other_name = tls_slapd.url.replace("127.0.0.1", "localhost")
    misnamed = LdapSource(
        other_name, SUFFIX, READER_DN, READER_PASSWORD, ca_certs_file=tls_slapd.ca_file, **options
    )
    with pytest.raises(SourceUnavailable, match="doesn.t match any name"):
        misnamed.authenticate("zhangsan", "Zhangsan#2026")


def test_a_stopped_directory_is_unavailable_and_lets_no_login_through(private_slapd):
    source = LdapSource(private_slapd.url, SUFFIX, READER_DN, READER_PASSWORD, timeout=2.0)
    assert source.authenticate("zhangsan", "Zhangsan#2026") is not None
    private_slapd.stop()
    for password in ("Zhangsan#2026", "wrong"):
        with pytest.raises(SourceUnavailable, match="LDAP directory .* is unavailable") as raised:
            source.authenticate("zhangsan", password)
        assert password not in str(raised.value)
        assert READER_PASSWORD not in str(raised.value)
    assert source.authenticate("zhangsan", "") is None  # refused before the directory is asked
    with pytest.raises(SourceUnavailable, match="unavailable"):
        source.lookup("zhangsan")


def test_an_unreachable_port_is_unavailable():
    source = LdapSource(f"ldap://127.0.0.1:{free_port()}", SUFFIX, READER_DN, READER_PASSWORD, timeout=1.0)
    with pytest.raises(SourceUnavailable, match="Connection refused"):
        source.authenticate("zhangsan", "Zhangsan#2026")


def test_a_directory_that_never_answers_times_out(silent_tcp_server):
    source = LdapSource(
        f"ldap://127.0.0.1:{silent_tcp_server}", SUFFIX, READER_DN, READER_PASSWORD, timeout=0.5
    )
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="timed out") as raised:
        source.authenticate("zhangsan", "Zhangsan#2026")
    assert time.monotonic() - started < 1.5
    assert READER_PASSWORD not in str(raised.value)
