"""The provider's pages in a real browser: headless Chromium, JavaScript off, clicking and typing through
real OIDC flows that start and end at a platform (an Authlib relying party on its own port).

Pages are in Chinese by default; the texts below are the Chinese catalogue's, except where the test
switches to English.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pyotp
import pytest
from browser_rp import LOA3
from flows import PERSON

from idp.sources.base import EntityRecord

try:
    from playwright.sync_api import Page, expect
except ImportError as exc:  # under CI=true a missing driver fails the run
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip(
        f"the playwright package is missing ({exc}): install requirements-dev.txt", allow_module_level=True
    )

LOA2 = "urn:cn:gov:loa:2"
USCC = "91350100M000100Y43"
ENTITY_NAME = "福州示例科技有限公司"
LISI = {
    "username": "lisi",
    "password": "lisi password 1",
    "name": "李四",
    "id_number": "440305199207182464",
}
IDENTIFIER_LABEL = "用户名、身份证号或手机号"


# -- steps ----------------------------------------------------------------------------------------


def url_of(base: str, path: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(base + path))


def start_sign_in(page: Page, platform: Any, link: str = "#login") -> None:
    page.goto(platform.url)
    page.locator(link).click()


def type_password(page: Page, provider: Any, person: dict[str, str] = PERSON) -> None:
    """On the provider's login page: type the identifier and password, press 登录."""
    expect(page).to_have_url(url_of(provider.url, "/login?tx="))
    page.get_by_label(IDENTIFIER_LABEL).fill(person["username"])
    page.get_by_label("密码", exact=True).fill(person["password"])
    page.get_by_role("button", name="登录", exact=True).click()


def signed_in_at(page: Page, platform: Any, acr: str = LOA2) -> None:
    expect(page).to_have_url(platform.url + "/")
    expect(page.locator("#status")).to_have_text("signed in")
    expect(page.locator("#name")).to_have_text("张三")
    expect(page.locator("#acr")).to_have_text(acr)


def sign_in(page: Page, provider: Any, platform: Any) -> None:
    start_sign_in(page, platform)
    type_password(page, provider)
    signed_in_at(page, platform)


def totp_code(secret: str, steps_ahead: int = 0) -> str:
    """The code of the current time step, or of a later one (accepted: one step of drift either way).

    A code is accepted once per time step, so a second factor asked for soon after another one is
    given the next step's code, which is never the step already spent."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def enter_code(page: Page, provider: Any, code: str) -> None:
    expect(page).to_have_url(url_of(provider.url, "/mfa/verify?tx="))
    expect(page.locator('input[name="password"]')).to_have_count(0)
    page.get_by_label("请输入身份验证器应用中显示的 6 位验证码").fill(code)
    page.get_by_role("button", name="验证", exact=True).click()


def person_id(services: Any, person: dict[str, str] = PERSON) -> str:
    return services.persons.authenticate(person["username"], person["password"]).id


# -- 1. sign-in and language ----------------------------------------------------------------------


def test_sign_in_through_a_platform_and_switch_the_page_language(page, provider, portal):
    page.goto(portal.url)
    expect(page.locator("#status")).to_have_text("not signed in")
    page.get_by_role("link", name="Sign in with the provider").click()
    expect(page).to_have_url(url_of(provider.url, "/login?tx="))
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("登录")
    expect(page.get_by_text("登录以继续使用 省政务服务网")).to_be_visible()

    page.get_by_role("link", name="English").click()
    expect(page).to_have_url(url_of(provider.url, "/login?tx="))  # the same sign-in goes on
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Sign in")
    expect(page.get_by_label("Username, ID number or mobile number")).to_be_visible()
    expect(page.get_by_text("Sign in to continue to 省政务服务网")).to_be_visible()
    expect(page.get_by_text(IDENTIFIER_LABEL)).to_have_count(0)

    page.get_by_role("link", name="中文").click()
    expect(page.locator("h1")).to_have_text("登录")
    type_password(page, provider)
    signed_in_at(page, portal)
    expect(page.locator("#amr")).to_have_text("pwd")


# -- 2. consent -----------------------------------------------------------------------------------


def test_consent_deny_then_allow(page, provider, tax):
    start_sign_in(page, tax)
    type_password(page, provider)
    expect(page).to_have_url(url_of(provider.url, "/consent?tx="))
    expect(page.locator("h1")).to_have_text("授权访问")
    expect(page.get_by_text("电子税务局")).to_be_visible()
    page.get_by_role("button", name="拒绝", exact=True).click()
    expect(page).to_have_url(url_of(tax.url, "/callback?"))
    expect(page.locator("#error")).to_have_text("access_denied")
    expect(page.locator("#status")).to_have_text("not signed in")

    # signed in at the provider already: straight to the consent page, asked again
    page.locator("#login").click()
    expect(page).to_have_url(url_of(provider.url, "/consent?tx="))
    page.get_by_role("button", name="同意", exact=True).click()
    signed_in_at(page, tax)


# -- 3. TOTP enrolment on the account page, then a login with the code ----------------------------


def test_enrol_totp_on_the_account_page_then_sign_in_with_the_code(page, new_page, provider, portal):
    sign_in(page, provider, portal)
    page.goto(provider.url + "/account/mfa")
    expect(page.locator("h1")).to_have_text("设置两步验证")
    expect(page.locator('img[src^="data:image/svg+xml;base64,"]')).to_be_visible()
    secret = page.locator("p", has_text="无法扫描").locator(".code").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    page.get_by_label("输入应用中显示的 6 位验证码").fill(totp_code(secret))
    page.get_by_role("button", name="开启两步验证").click()

    expect(page.locator("h1")).to_have_text("保存您的恢复码")
    codes = page.locator("ul.code li").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", c) for c in codes), codes
    page.get_by_role("button", name="我已保存恢复码，继续").click()
    expect(page).to_have_url(url_of(provider.url, "/account/mfa"))  # a GET form: "/account/mfa?"
    expect(page.get_by_text("张三 已开启两步验证。")).to_be_visible()
    expect(page.get_by_text("未使用的恢复码：10 个")).to_be_visible()

    other = new_page()  # another browser: password, then the code
    start_sign_in(other, portal)
    type_password(other, provider)
    enter_code(other, provider, totp_code(secret, steps_ahead=1))
    signed_in_at(other, portal, acr=LOA3)
    expect(other.locator("#amr")).to_have_text("pwd otp mfa")


# -- 4. step-up -----------------------------------------------------------------------------------


def test_step_up_asks_for_the_code_not_the_password(page, provider, portal, live_services):
    sign_in(page, provider, portal)  # password only: level 2 (verified person)
    pid = person_id(live_services)
    secret = live_services.mfa.begin_enrolment(pid).secret  # TOTP turned on meanwhile, elsewhere
    live_services.mfa.confirm_enrolment(pid, totp_code(secret))

    page.locator("#step-up").click()  # the platform asks acr_values=urn:cn:gov:loa:3
    enter_code(page, provider, totp_code(secret, steps_ahead=1))
    signed_in_at(page, portal, acr=LOA3)
    expect(page.locator("#amr")).to_have_text("pwd otp mfa")


# -- 5. account pages -----------------------------------------------------------------------------


def test_account_profile_sessions_and_platforms(page, provider, tax):
    start_sign_in(page, tax)
    type_password(page, provider)
    page.get_by_role("button", name="同意", exact=True).click()
    signed_in_at(page, tax)

    page.goto(provider.url + "/account")
    expect(page.locator("h1")).to_have_text("我的账号")
    expect(page.locator("main")).to_contain_text("张三")
    expect(page.get_by_text("410105********1235")).to_be_visible()
    assert PERSON["id_number"] not in page.content()

    page.get_by_role("link", name="我的登录会话").click()
    expect(page).to_have_url(provider.url + "/account/sessions")
    sessions = page.locator("main section")
    expect(sessions).to_have_count(1)
    expect(sessions).to_contain_text("当前浏览器")
    expect(sessions).to_contain_text("使用过的服务： 电子税务局")

    page.get_by_role("link", name="已授权的平台").click()
    expect(page).to_have_url(provider.url + "/account/platforms")
    platform = page.locator("main section", has_text="电子税务局")
    expect(platform).to_have_count(1)
    platform.get_by_role("button", name="撤销授权").click()
    expect(page.get_by_text("授权已撤销，该平台下次需要重新申请授权。")).to_be_visible()
    expect(page.locator("main section", has_text="电子税务局")).to_have_count(0)
    expect(page.get_by_text("您尚未授权任何平台。")).to_be_visible()

    start_sign_in(page, tax)  # withdrawn: the platform must ask again
    expect(page).to_have_url(url_of(provider.url, "/consent?tx="))


# -- 6. logout ------------------------------------------------------------------------------------


def test_platform_initiated_logout_signs_out_at_the_provider(page, provider, portal):
    sign_in(page, provider, portal)
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page).to_have_url(url_of(portal.url, "/signed-out?state="))
    expect(page.locator("#signed-out")).to_be_visible()
    expect(page.locator("#status")).to_have_text("not signed in")

    page.goto(provider.url + "/")
    expect(page.get_by_text("您尚未登录。")).to_be_visible()
    page.goto(provider.url + "/account")
    expect(page).to_have_url(provider.url + "/login")


# -- 7. acting for an entity ----------------------------------------------------------------------


class OneEntityRegister:
    """The enterprise register, as far as this test needs it: 李四 represents the Fuzhou company."""

    def lookup_entity(self, uscc: str) -> EntityRecord | None:
        if uscc != USCC:
            return None
        return EntityRecord(
            uscc=USCC,
            name=ENTITY_NAME,
            entity_type="enterprise",
            status="active",
            legal_representative_name=LISI["name"],
            legal_representative_id_number=LISI["id_number"],
        )


def agent_of_an_entity(services: Any) -> str:
    """张三 holds an agent authorisation, granted by the legal representative 李四; the entity's id."""
    from idp.services.entities import EntityService
    from idp.store.db import build_sessionmaker

    entities = EntityService(
        build_sessionmaker(services.tokens.engine()), services.persons, OneEntityRegister()
    )
    lisi = services.persons.upsert(LISI)
    entity = entities.verify_entity(entities.create_entity(USCC, ENTITY_NAME).id)
    entities.grant_agent(entity.id, person_id(services), ["cases:apply"], None, lisi.id)
    return entity.id


def test_choose_to_act_for_an_entity(page, provider, portal, live_services):
    entity_id = agent_of_an_entity(live_services)
    start_sign_in(page, portal, "#login-entity")  # scope: openid profile entity
    type_password(page, provider)
    expect(page).to_have_url(url_of(provider.url, "/entity/select?tx="))
    expect(page.locator("main")).to_contain_text(USCC)
    radios = page.locator('input[type="radio"][name="acting"]')
    expect(radios).to_have_count(2)
    expect(page.locator('input[name="acting"][value="self"]')).to_have_count(1)
    page.locator(f'input[name="acting"][value="{entity_id}"]').check()
    page.locator('form:has(input[name="acting"]) button[type="submit"][name="continue"]').click()
    signed_in_at(page, portal)
    expect(page.locator("#entity-uscc")).to_have_text(USCC)
