"""The population and enterprise registers over real HTTP: answers, and every way a register can fail."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from flask import Flask, Response
from source_servers import free_port

from idp.domain.identifiers import compute_uscc_check
from idp.sources.base import EntityRecord, EntityRegister, RealNameVerifier, SourceUnavailable
from idp.sources.registers import EnterpriseRegister, PopulationRegister
from registers.app import create_app

ZHANGSAN_ID = "410105198503121235"


# -- population register: real-name verification -------------------------------------------------


def test_verify_real_name_match_and_mismatch(register_url):
    register: RealNameVerifier = PopulationRegister(register_url)
    assert register.verify_real_name("张三", ZHANGSAN_ID) is True
    assert register.verify_real_name("王五", "310101197801013570") is True
    assert register.verify_real_name("李四", ZHANGSAN_ID) is False  # a real number with another name
    assert register.verify_real_name("张三", "11010519491231002X") is False  # valid, but not registered


def test_verify_accepts_a_lower_case_x(wsgi_server):
    data = {"persons": [{"name": "赵六", "id_number": "11010519491231002X"}], "entities": []}
    register = PopulationRegister(wsgi_server(create_app(data)))
    assert register.verify_real_name("赵六", "11010519491231002x") is True


# -- enterprise register: entity lookup -----------------------------------------------------------


def test_lookup_entity_found(register_url):
    register: EntityRegister = EnterpriseRegister(register_url)
    record = register.lookup_entity("91350100M000100Y43")
    assert record == EntityRecord(
        uscc="91350100M000100Y43",
        name="示例科技有限公司",
        entity_type="enterprise",
        status="active",
        legal_representative_name="张三",
        legal_representative_id_number=ZHANGSAN_ID,
    )


def test_lookup_entity_unknown_is_none(register_url):
    unregistered = "91440300MA5F00000" + compute_uscc_check("91440300MA5F00000")  # valid, not registered
    assert EnterpriseRegister(register_url).lookup_entity(unregistered) is None


def test_lookup_entity_passes_a_suspended_status_through(register_url):
    record = EnterpriseRegister(register_url).lookup_entity("12440300455758122T")
    assert record is not None
    assert record.status == "suspended"
    assert record.entity_type == "public_institution"
    assert record.legal_representative_name == "李四"


def test_lookup_entity_refuses_a_path_trick(register_url):
    with pytest.raises(SourceUnavailable, match="HTTP 400"):
        EnterpriseRegister(register_url).lookup_entity("../persons/verify")


# -- bearer token ---------------------------------------------------------------------------------


def test_bearer_token_is_sent_when_configured(wsgi_server):
    url = wsgi_server(create_app(token="register-token"))
    assert PopulationRegister(url, token="register-token").verify_real_name("张三", ZHANGSAN_ID) is True
    assert EnterpriseRegister(url, token="register-token").lookup_entity("91350100M000100Y43") is not None
    with pytest.raises(SourceUnavailable, match="HTTP 401"):
        PopulationRegister(url).verify_real_name("张三", ZHANGSAN_ID)
    with pytest.raises(SourceUnavailable, match="HTTP 401"):
        EnterpriseRegister(url, token="wrong").lookup_entity("91350100M000100Y43")


# -- failures: never True, always a clear SourceUnavailable ---------------------------------------


def test_a_register_that_is_down_is_unavailable():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SourceUnavailable, match="the population register is unavailable: cannot connect"):
        PopulationRegister(url).verify_real_name("张三", ZHANGSAN_ID)
    with pytest.raises(SourceUnavailable, match="the enterprise register is unavailable: cannot connect"):
        EnterpriseRegister(url).lookup_entity("91350100M000100Y43")


def test_a_server_error_is_unavailable(wsgi_server):
    url = wsgi_server(_stub(lambda: Response('{"match": true}', 500, mimetype="application/json")))
    with pytest.raises(SourceUnavailable, match="HTTP 500"):
        PopulationRegister(url).verify_real_name("张三", ZHANGSAN_ID)
    with pytest.raises(SourceUnavailable, match="HTTP 500"):
        EnterpriseRegister(url).lookup_entity("91350100M000100Y43")


def test_a_register_that_is_too_slow_times_out(wsgi_server):
    release = threading.Event()

    def slow() -> Response:
        release.wait(5)
        return Response('{"match": true}', mimetype="application/json")

    url = wsgi_server(_stub(slow))
    try:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="no answer within 0.3 s"):
            PopulationRegister(url, timeout=0.3).verify_real_name("张三", ZHANGSAN_ID)
        assert time.monotonic() - started < 1.5
        with pytest.raises(SourceUnavailable, match="no answer within 0.3 s"):
            EnterpriseRegister(url, timeout=0.3).lookup_entity("91350100M000100Y43")
    finally:
        release.set()


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        '{"match": "true"}',  # a string is not a boolean
        '{"match": 1}',
        '{"matched": true}',
        "[true]",
        "true",
        "",
    ],
)
def test_a_malformed_verification_answer_is_unavailable_never_true(wsgi_server, body):
    url = wsgi_server(_stub(lambda: Response(body, 200, mimetype="application/json")))
    with pytest.raises(SourceUnavailable, match="the population register is unavailable"):
        PopulationRegister(url).verify_real_name("张三", ZHANGSAN_ID)


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        '{"uscc": "91350100M000100Y43", "name": "示例科技有限公司"}',  # fields missing
        '{"uscc": "91350100M000100Y43", "name": "x", "entity_type": "enterprise", "status": "active",'
        ' "legal_representative": "张三"}',
        # another entity's record
        '{"uscc": "91110108MA01C2D3EG", "name": "x", "entity_type": "enterprise", "status": "active",'
        ' "legal_representative": {"name": "王五", "id_number": "310101197801013570"}}',
    ],
)
def test_a_malformed_entity_answer_is_unavailable(wsgi_server, body):
    url = wsgi_server(_stub(lambda: Response(body, 200, mimetype="application/json")))
    with pytest.raises(SourceUnavailable, match="the enterprise register is unavailable"):
        EnterpriseRegister(url).lookup_entity("91350100M000100Y43")


def test_a_redirect_is_not_followed(wsgi_server):
    url = wsgi_server(_stub(lambda: Response("", 302, headers={"Location": "http://127.0.0.1:1/"})))
    with pytest.raises(SourceUnavailable, match="HTTP 302"):
        PopulationRegister(url).verify_real_name("张三", ZHANGSAN_ID)


def test_proxies_from_the_environment_are_ignored(register_url, monkeypatch):
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    monkeypatch.setenv("http_proxy", dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert PopulationRegister(register_url).verify_real_name("张三", ZHANGSAN_ID) is True


# -- the reference service refuses bad input with a JSON 400 --------------------------------------


@pytest.mark.parametrize(
    "data, content_type",
    [
        ("{not json", "application/json"),
        ("[]", "application/json"),
        ('{"name": "张三"}', "application/json"),
        ('{"name": "张三", "id_number": 410105198503121235}', "application/json"),
        ('{"name": "", "id_number": "410105198503121235"}', "application/json"),
        ('{"name": "张三", "id_number": "410105198503121234"}', "application/json"),  # bad check character
        ('{"name": "张三", "id_number": "41010519850231123X"}', "application/json"),
        (b"\xff\xfe", "application/json"),
        ("name=张三", "application/x-www-form-urlencoded"),
    ],
)
def test_reference_service_refuses_bad_verification_input(register_url, data, content_type):
    response = requests.post(
        f"{register_url}/v1/persons/verify", data=data, headers={"Content-Type": content_type}, timeout=3
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"]


@pytest.mark.parametrize("code", ["91350100M000100Y44", "not-a-code", "91350100M000100Y4", "%E4%B8%AD"])
def test_reference_service_refuses_a_bad_credit_code(register_url, code):
    response = requests.get(f"{register_url}/v1/entities/{code}", timeout=3)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_reference_service_answers_json_for_unknown_routes_and_methods(register_url):
    assert requests.get(f"{register_url}/v1/nothing", timeout=3).json()["error"] == "not_found"
    wrong_method = requests.get(f"{register_url}/v1/persons/verify", timeout=3)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"
    too_large = requests.post(f"{register_url}/v1/persons/verify", data="x" * 20000, timeout=3)
    assert too_large.status_code == 413
    assert too_large.headers["Content-Type"].startswith("application/json")
    assert requests.get(f"{register_url}/healthz", timeout=3).json() == {"status": "ok"}


def test_reference_data_with_an_invalid_identifier_is_refused_at_start():
    with pytest.raises(ValueError, match="invalid person"):
        create_app({"persons": [{"name": "张三", "id_number": "410105198503121234"}]})
    with pytest.raises(ValueError, match="invalid entity"):
        create_app({"entities": [{"uscc": "91350100M000100Y44", "name": "x", "status": "active"}]})


# -- helpers --------------------------------------------------------------------------------------


def _stub(answer) -> Flask:
    """A register that answers every request with `answer()`."""
    app = Flask("stub_register")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def any_path(path: str) -> Response:
        return answer()

    return app
