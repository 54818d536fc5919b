"""Citizen pages in Chinese and English: catalog completeness, compilation, rendering, language switch."""

from __future__ import annotations

import gettext
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po
from flask import Blueprint, Flask, g, render_template, request
from flask.testing import FlaskClient
from flask_wtf import CSRFProtect

from idp.web.i18n import (
    LANG_COOKIE,
    LANG_SESSION_COOKIE,
    TRANSLATIONS_DIR,
    compile_translations,
    get_locale_code,
    init_i18n,
    safe_next,
    set_ui_locales,
)

ROOT = Path(__file__).resolve().parents[2]
PO_PATH = TRANSLATIONS_DIR / "zh" / "LC_MESSAGES" / "messages.po"
PERSON = SimpleNamespace(name="张三", username="zhangsan")

# template -> (context, Chinese text expected for zh, English text expected for en)
PAGES: dict[str, tuple[dict[str, Any], str, str]] = {
    "login.html": (
        {
            "tx": "tx-1",
            "client_name": "社保服务",
            "login_hint": "zhangsan",
            "error": None,
            "current_person": None,
        },
        "用户名、身份证号或手机号",
        "Username, ID number or mobile number",
    ),
    "consent.html": (
        {
            "tx": "tx-1",
            "client_name": "社保服务",
            "scopes": ["openid", "profile", "email", "phone", "offline_access", "custom:scope"],
            "person_name": "张三",
        },
        "您的手机号码",
        "Your mobile number",
    ),
    "select_account.html": (
        {"tx": "tx-1", "client_name": "社保服务", "person_name": "张三"},
        "使用其他账号",
        "Use another account",
    ),
    "logout_confirm.html": (
        {
            "client_name": "社保服务",
            "state": "st",
            "post_logout_redirect_uri": "https://rp.example/after",
            "client_id": "rp1",
            "id_token_hint": None,
        },
        "是否退出所有政务服务的登录？",
        "Do you want to sign out of all government services?",
    ),
    "logged_out.html": ({}, "您已退出登录。", "You have signed out."),
    "error.html": (
        {"status": 404, "error": "invalid_request", "description": "Unknown page"},
        "页面不存在",
        "Page not found",
    ),
    "home.html": ({"person": PERSON}, "退出登录", "Sign out"),
}
FORM_PAGES = ("login.html", "consent.html", "select_account.html", "logout_confirm.html")


def _stub_blueprints(app: Flask) -> None:
    def stub() -> str:
        return "stub"

    login = Blueprint("login", __name__)
    login.add_url_rule("/login", "submit", stub, methods=["POST"])
    login.add_url_rule("/login", "form", stub, methods=["GET"])
    login.add_url_rule("/login/select", "select_account", stub, methods=["POST"])
    consent = Blueprint("consent", __name__)
    consent.add_url_rule("/consent", "submit", stub, methods=["POST"])
    logout = Blueprint("logout", __name__)
    logout.add_url_rule("/logout", "end_session", stub, methods=["GET", "POST"])
    logout.add_url_rule("/logout/confirm", "confirm", stub, methods=["POST"])
    account = Blueprint("account", __name__)
    account.add_url_rule("/account", "profile", stub)
    account.add_url_rule("/register", "register_form", stub)
    account.add_url_rule("/password/forgot", "forgot_form", stub)
    for blueprint in (login, consent, logout, account):
        app.register_blueprint(blueprint)


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    app.config.update(SECRET_KEY="test-secret", TESTING=True)
    csrf = CSRFProtect(app)
    init_i18n(app, "zh")
    _stub_blueprints(app)

    @app.route("/render/<name>", methods=["GET", "POST"])
    def render(name: str) -> str:
        context = dict(PAGES[name][0])
        for key in ("error", "status", "client_name", "current_person"):
            if key in request.args:
                context[key] = int(request.args[key]) if key == "status" else request.args[key]
        if "current_person" in context and context["current_person"]:
            context["current_person"] = PERSON
        if request.args.get("stored"):
            set_ui_locales(request.args["stored"])
        return render_template(name, **context)

    @app.get("/code")
    def code() -> str:
        return get_locale_code()

    @app.post("/code")
    @csrf.exempt
    def code_after_lookup() -> str:
        first = get_locale_code()
        g.lang_next = "/login?tx=9"
        set_ui_locales("en")
        return f"{first} {get_locale_code()} {render_template('logged_out.html')}"

    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class _FormScan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[list[dict[str, str | None]]] = []
        self.scripts = 0
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append([])
        elif tag in ("input", "button") and self.forms:
            self.forms[-1].append(attributes)
        if tag == "script":
            self.scripts += 1
        for name in ("src", "href", "action"):
            value = attributes.get(name)
            if value and "//" in value.split("?", 1)[0]:
                self.sources.append(value)


def _catalog() -> Any:
    with PO_PATH.open("rb") as po_file:
        return read_po(po_file, locale="zh")


def test_every_message_has_a_chinese_translation() -> None:
    catalog = _catalog()
    messages = [m for m in catalog if m.id]
    assert len(messages) > 20
    untranslated = [m.id for m in messages if not m.string or not str(m.string).strip()]
    assert untranslated == []
    assert [m.id for m in messages if m.fuzzy] == []
    assert [(m.id, errors) for m, errors in catalog.check() if errors] == []


def test_catalog_covers_every_extracted_string(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-o", str(pot), str(ROOT)]
    )
    with pot.open("rb") as pot_file:
        extracted = {m.id for m in read_po(pot_file) if m.id}
    assert "Sign in" in extracted and "Allow" in extracted
    missing = sorted(str(i) for i in extracted - {m.id for m in _catalog() if m.id})
    assert missing == [], f"add to {PO_PATH.relative_to(ROOT)} (pybabel update): {missing}"


def test_pybabel_command_line_extracts_and_compiles(tmp_path: Path) -> None:
    pybabel = Path(sys.executable).with_name("pybabel")
    if not pybabel.exists():
        pytest.skip("pybabel script not installed next to the interpreter")
    shutil.copytree(TRANSLATIONS_DIR, tmp_path / "translations", ignore=shutil.ignore_patterns("*.mo"))
    subprocess.run(
        [str(pybabel), "compile", "-d", str(tmp_path / "translations")], check=True, capture_output=True
    )
    assert (tmp_path / "translations" / "zh" / "LC_MESSAGES" / "messages.mo").stat().st_size > 0


def test_compile_translations_builds_missing_and_stale_catalogs(tmp_path: Path) -> None:
    root = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS_DIR, root, ignore=shutil.ignore_patterns("*.mo"))
    po = root / "zh" / "LC_MESSAGES" / "messages.po"
    mo = po.with_suffix(".mo")

    assert compile_translations(root) == [mo]
    with mo.open("rb") as mo_file:
        translations = gettext.GNUTranslations(mo_file)
    assert translations.gettext("Sign in") == "登录"
    assert translations.gettext("Continue as %(name)s") % {"name": "张三"} == "以 张三 的身份继续"

    assert compile_translations(root) == []  # up to date: untouched
    stat = po.stat()
    os.utime(po, (stat.st_atime, mo.stat().st_mtime + 10))
    assert compile_translations(root) == [mo]
    assert sorted(p.name for p in mo.parent.iterdir()) == ["messages.mo", "messages.po"]


def test_init_i18n_leaves_a_compiled_catalog() -> None:
    init_i18n(Flask(__name__))
    mo = PO_PATH.with_suffix(".mo")
    assert mo.exists() and mo.stat().st_mtime >= PO_PATH.stat().st_mtime


@pytest.mark.parametrize("name", sorted(PAGES))
def test_pages_render_in_chinese_and_english(client: FlaskClient, name: str) -> None:
    _, chinese, english = PAGES[name]
    zh = client.get(f"/render/{name}", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)
    en = client.get(f"/render/{name}", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)

    assert '<html lang="zh-CN">' in zh and chinese in zh and "统一身份认证平台" in zh
    assert '<html lang="en">' in en and english in en and "Unified Identity Authentication" in en
    assert chinese not in en
    assert '<meta name="viewport"' in zh and "<main" in zh
    for page in (zh, en):
        scan = _FormScan()
        scan.feed(page)
        assert scan.scripts == 0 and "<script" not in page.lower()
        assert scan.sources == []  # no external assets or links
        assert "Traceback" not in page

    # no English source string that has a different Chinese translation leaks into the Chinese page
    leaked = [m.id for m in _catalog() if m.id and m.string != m.id and len(m.id) > 8 and m.id in zh]
    assert leaked == []


@pytest.mark.parametrize("name", FORM_PAGES)
def test_every_form_carries_the_csrf_token(client: FlaskClient, name: str) -> None:
    scan = _FormScan()
    scan.feed(client.get(f"/render/{name}").get_data(as_text=True))
    assert scan.forms
    for fields in scan.forms:
        tokens = [f for f in fields if f.get("name") == "csrf_token" and f.get("type") == "hidden"]
        assert len(tokens) == 1 and tokens[0].get("value")


def test_login_form_fields_and_cancel(client: FlaskClient) -> None:
    scan = _FormScan()
    page = client.get("/render/login.html?ui_locales=en").get_data(as_text=True)
    scan.feed(page)
    sign_in, cancel = scan.forms
    by_name = {f.get("name"): f for f in sign_in}
    assert by_name["identifier"]["autocomplete"] == "username"
    assert by_name["identifier"]["value"] == "zhangsan"
    assert by_name["password"]["autocomplete"] == "current-password"
    assert by_name["tx"]["value"] == "tx-1"
    assert {f.get("name"): f.get("value") for f in cancel}["cancel"] == "1"
    assert 'action="/login"' in page and "Sign in to continue to 社保服务" in page


@pytest.mark.parametrize(
    ("error", "zh", "en"),
    [
        ("invalid_credentials", "账号或密码错误。", "The account or password is incorrect."),
        ("locked", "账号或密码错误。", "The account or password is incorrect."),
        ("csrf", "页面已过期，请重试。", "The form expired. Please try again."),
    ],
)
def test_login_errors_are_generic(client: FlaskClient, error: str, zh: str, en: str) -> None:
    assert zh in client.get(f"/render/login.html?error={error}").get_data(as_text=True)
    page = client.get(f"/render/login.html?error={error}&ui_locales=en").get_data(as_text=True)
    assert en in page and 'role="alert"' in page and f">{error}<" not in page


def test_login_shows_the_current_person_for_reauthentication(client: FlaskClient) -> None:
    page = client.get("/render/login.html?current_person=1").get_data(as_text=True)
    assert "您当前已登录为 张三，请重新登录以继续。" in page


def test_consent_describes_known_scopes_and_shows_unknown_ones(client: FlaskClient) -> None:
    page = client.get("/render/consent.html?ui_locales=en").get_data(as_text=True)
    for text in ("Know who you are", "Your name and username", "Your email address", "custom:scope"):
        assert text in page
    assert 'name="decision" value="allow"' in page and 'name="decision" value="deny"' in page


def test_logout_confirm_only_carries_present_parameters(client: FlaskClient) -> None:
    page = client.get("/render/logout_confirm.html").get_data(as_text=True)
    assert 'name="state" value="st"' in page and 'name="client_id" value="rp1"' in page
    assert 'name="post_logout_redirect_uri" value="https://rp.example/after"' in page
    assert "id_token_hint" not in page
    assert 'value="logout"' in page and 'value="stay"' in page


@pytest.mark.parametrize(
    ("status", "title"),
    [
        (400, "The request could not be processed"),
        (404, "Page not found"),
        (413, "The request is too large"),
        (418, "The request could not be processed"),
        (500, "Something went wrong"),
        (502, "Something went wrong"),
    ],
)
def test_error_page_titles(client: FlaskClient, status: int, title: str) -> None:
    page = client.get(f"/render/error.html?status={status}&ui_locales=en").get_data(as_text=True)
    assert f"<h1>{title}</h1>" in page
    assert "invalid_request" in page and "Unknown page" in page
    assert "Return to the service you came from and try again." in page


def test_user_supplied_values_are_escaped(client: FlaskClient) -> None:
    evil = "<script>alert(1)</script>"
    for name in ("login.html", "consent.html", "select_account.html", "logout_confirm.html"):
        page = client.get(f"/render/{name}", query_string={"client_name": evil}).get_data(as_text=True)
        assert evil not in page and "&lt;script&gt;" in page


def test_home_without_a_person(client: FlaskClient, app: Flask) -> None:
    with app.test_request_context("/?ui_locales=en"):
        page = render_template("home.html", person=None)
    assert "You are not signed in." in page and "/logout" not in page


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"query_string": {"ui_locales": "zh-CN en"}}, "zh"),
        ({"query_string": {"ui_locales": "zh-Hans"}}, "zh"),
        ({"query_string": {"ui_locales": "fr en-US"}}, "en"),
        ({"query_string": {"ui_locales": "fr"}}, "zh"),
        ({"headers": {"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"}}, "en"),
        ({"headers": {"Accept-Language": "fr,en-US;q=0.9,zh;q=0.8"}}, "en"),
        ({"headers": {"Accept-Language": "zh-TW,en;q=0.5"}}, "zh"),
        ({"headers": {"Accept-Language": "fr,de"}}, "zh"),
        ({}, "zh"),
    ],
)
def test_locale_selection(client: FlaskClient, kwargs: dict[str, Any], expected: str) -> None:
    assert client.get("/code", **kwargs).get_data(as_text=True) == expected


def test_locale_precedence(client: FlaskClient) -> None:
    english = {"Accept-Language": "en"}
    client.set_cookie(LANG_COOKIE, "zh")
    assert client.get("/code", headers=english).get_data(as_text=True) == "zh"  # cookie over header
    assert client.get("/code?ui_locales=en", headers=english).get_data(as_text=True) == "en"
    response = client.post("/code", data={"ui_locales": "en"})
    assert response.get_data(as_text=True).startswith("en ")  # ui_locales from a posted form
    page = client.get("/render/logged_out.html?stored=en").get_data(as_text=True)
    assert "You have signed out." in page  # g.ui_locales set by the view wins over the cookie


def test_set_ui_locales_after_a_lookup_takes_effect(client: FlaskClient) -> None:
    body = client.post("/code", headers={"Accept-Language": "zh"}).get_data(as_text=True)
    assert body.startswith("zh en ") and "You have signed out." in body
    assert "/lang/zh?next=/login?tx%3D9" in body  # the view's g.lang_next for a POST-rendered page


def test_language_switch_sets_cookie_and_redirects_locally(client: FlaskClient) -> None:
    response = client.get("/lang/en", query_string={"next": "/login?tx=1"})
    assert response.status_code == 303 and response.headers["Location"] == "/login?tx=1"
    remembered, session = response.headers.getlist("Set-Cookie")
    for cookie in (remembered, session):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert remembered.startswith("lang=en;") and "Max-Age=31536000" in remembered
    assert session.startswith("lang_session=en;") and "Max-Age" not in session
    assert client.get("/code").get_data(as_text=True) == "en"
    # a switch in the middle of a sign-in beats the client's ui_locales carried by the transaction
    assert client.get("/code?ui_locales=zh").get_data(as_text=True) == "en"
    assert "You have signed out." in client.get("/render/logged_out.html?stored=zh").get_data(as_text=True)
    client.delete_cookie(LANG_SESSION_COOKIE)  # a new browser session: the client's hint first again
    assert client.get("/code?ui_locales=zh").get_data(as_text=True) == "zh"
    assert client.get("/code").get_data(as_text=True) == "en"

    assert client.get("/lang/zh-CN?next=/").headers["Location"] == "/"
    assert client.get("/code").get_data(as_text=True) == "zh"
    assert client.get("/lang/fr?next=/").status_code == 404


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "evil.example",
        "javascript:alert(1)",
        "",
    ],
)
def test_language_switch_refuses_open_redirects(client: FlaskClient, target: str) -> None:
    response = client.get("/lang/en", query_string={"next": target})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert safe_next(target) == "/"


def test_switch_links_return_to_the_current_page(client: FlaskClient) -> None:
    page = client.get("/render/home.html?x=1&y=a%20b").get_data(as_text=True)
    assert 'href="/lang/en?next=/render/home.html?x%3D1%26y%3Da%2520b"' in page
    assert 'href="/lang/zh?next=' in page and 'aria-current="true">中文' in page
    target = "/render/home.html?x=1&y=a%20b"
    assert client.get("/lang/en", query_string={"next": target}).headers["Location"] == target


def test_get_locale_code_outside_a_request(app: Flask) -> None:
    with app.app_context():
        assert get_locale_code() == "zh"
    assert get_locale_code() == "zh"


def test_init_i18n_rejects_unsupported_default() -> None:
    with pytest.raises(ValueError):
        init_i18n(Flask(__name__), "fr")
    english = Flask(__name__)
    init_i18n(english, "en-US")

    @english.get("/code")
    def code() -> str:
        return get_locale_code()

    assert english.test_client().get("/code").get_data(as_text=True) == "en"


def test_rendered_csrf_token_is_accepted(client: FlaskClient) -> None:
    scan = _FormScan()
    scan.feed(client.get("/render/login.html").get_data(as_text=True))
    fields = {f.get("name"): f.get("value") for f in scan.forms[0]}
    accepted = client.post("/login", data={**fields, "identifier": "a", "password": "b"})
    assert accepted.status_code == 200 and accepted.get_data(as_text=True) == "stub"
    assert client.post("/login", data={"identifier": "a", "password": "b"}).status_code == 400


def test_error_page_for_a_too_large_form(app: Flask, client: FlaskClient) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1024

    @app.errorhandler(413)
    def too_large(exc: Exception) -> tuple[str, int]:
        return render_template("error.html", status=413, error="invalid_request", description=None), 413

    response = client.post("/login", data={"ui_locales": "en", "password": "x" * 4096})
    assert response.status_code == 413
    assert "请求内容过大" in response.get_data(as_text=True)
