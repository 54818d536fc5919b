"""The administration console in a real browser (headless Chromium, JavaScript off): an admin signs in
with password and TOTP through the provider's own pages, registers a platform, sees its secret once,
then signs out. Texts are the Chinese catalogue's (the default language)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from live_helpers import LiveServer, start_gunicorn

from admin.context import CONSOLE_CLIENT_ID, console_redirect_uri
from idp.domain.admin import PLATFORM_ADMIN

try:
    from playwright.sync_api import Page, expect
except ImportError as exc:  # under CI=true a missing driver fails the run
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip(
        f"the playwright package is missing ({exc}): install requirements-dev.txt", allow_module_level=True
    )

ADMIN = {
    "username": "wangwu_admin",
    "password": "wangwu admin password 1",
    "name": "王五",
    "id_number": "310101197801013570",
}


@pytest.fixture
def console(
    live_settings: Any, live_services: Any, live_port: int, tmp_path: Path
) -> Iterator[tuple[LiveServer, str]]:
    """gunicorn serving the provider, with a platform admin (TOTP enrolled); yields it and the TOTP secret."""
    person = live_services.persons.upsert(ADMIN)
    secret = live_services.mfa.begin_enrolment(person.id).secret
    live_services.mfa.confirm_enrolment(person.id, pyotp.TOTP(secret).at(time.time() - 30))
    live_services.admin.bootstrap_role(person.id, PLATFORM_ADMIN, by="test")
    # registered here once, so that the workers starting together do not race to create it
    live_services.admin.ensure_console_client(
        CONSOLE_CLIENT_ID, console_redirect_uri(live_settings.issuer), "urn:cn:gov:loa:3"
    )
    server = start_gunicorn(live_settings, live_port, tmp_path, workers=2, threads=4)
    try:
        yield server, secret
    finally:
        server.stop()
        tail = server.log_tail()
        if "Traceback" in tail or "ERROR" in tail:
            print(f"--- gunicorn log ---\n{tail}")


def at(base: str, path: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(base + path))


def test_admin_signs_in_registers_a_platform_sees_its_secret_once_and_signs_out(page: Page, console) -> None:
    server, totp_secret = console
    page.goto(server.url + "/admin/clients")

    # the provider's own sign-in: password, then the authenticator code (the console wants level 3)
    expect(page).to_have_url(at(server.url, "/login?tx="))
    page.get_by_label("用户名、身份证号或手机号").fill(ADMIN["username"])
    page.get_by_label("密码", exact=True).fill(ADMIN["password"])
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page).to_have_url(at(server.url, "/mfa/verify?tx="))
    page.get_by_label("请输入身份验证器应用中显示的 6 位验证码").fill(pyotp.TOTP(totp_secret).now())
    page.get_by_role("button", name="验证", exact=True).click()

    # back on the page asked for
    expect(page).to_have_url(server.url + "/admin/clients")
    expect(page.locator("h1")).to_have_text("接入平台")
    expect(page.get_by_role("link", name="签名密钥")).to_have_count(0)  # super_admin only
    page.get_by_role("link", name="注册平台").click()

    expect(page.locator("h1")).to_have_text("注册平台")
    page.get_by_label("客户端 ID", exact=True).fill("casehub")
    page.get_by_label("平台名称").fill("案件中心")
    page.get_by_label("重定向地址（每行一个）", exact=True).fill(
        "https://case.example.gov.cn/callback\nhttps://case.example.gov.cn/cb2"
    )
    page.get_by_label("最低身份认证等级").select_option("urn:cn:gov:loa:2")
    page.get_by_label("ID 令牌签名算法").select_option("ES256")
    page.get_by_role("button", name="注册", exact=True).click()

    expect(page.locator("h1")).to_have_text("平台已注册")
    secret = page.locator("#client_secret").inner_text().strip()
    assert len(secret) >= 32
    assert secret not in page.url

    page.get_by_role("link", name="完成：返回平台").click()
    expect(page).to_have_url(server.url + "/admin/clients/casehub")
    expect(page.locator("main")).to_contain_text("https://case.example.gov.cn/cb2")
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content()

    page.get_by_role("link", name="退出登录").first.click()
    page.get_by_role("button", name="退出登录", exact=True).click()
    expect(page.get_by_text("您已退出登录。")).to_be_visible()
    page.goto(server.url + "/admin/")
    expect(page).to_have_url(at(server.url, "/login?tx="))  # signed out: asked to sign in again
