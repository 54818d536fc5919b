"""Browser fixtures: headless Chromium (Debian's `chromium`) driven by Playwright, the provider in a real
gunicorn process, and two platforms (relying parties) on their own ports.

Playwright's Python package drives the system browser at /usr/bin/chromium (`executable_path`); its
own browser download is never used. Without that executable the tests are skipped, except under
CI=true, where they fail. Every test gets a fresh browser context (no cookies, JavaScript off: the
provider's pages must work without it) on clean tables and a fresh provider whose issuer matches its
port, provisioned in this process through `build_services` exactly as in tests/live.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))

from browser_rp import RelyingParty  # noqa: E402
from flows import PERSON  # noqa: E402
from live_helpers import LiveServer, free_port, start_gunicorn  # noqa: E402

CHROMIUM = os.environ.get("IDP_TEST_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
# Known to work headless as root in a container; Playwright adds its own fresh --user-data-dir.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; the browser tests are required under CI=true", pytrace=False)
    pytest.skip(reason)


# -- the browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module's tests. Not session-wide on purpose: while Playwright's sync API
    is alive, the main thread has an asyncio loop marked as running, so any later test that calls
    asyncio.run() would fail; the module scope ends it before the rest of the suite runs."""
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing: run `bash scripts/install-system-packages.sh`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"the playwright package is missing ({exc}): install requirements-dev.txt")
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # the assertions wait as long as the actions may
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def new_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    """Open a page in a new browser context: a browser that has never seen the provider."""
    contexts: list[Any] = []

    def open_page() -> Any:
        context = browser.new_context(locale="zh-CN", java_script_enabled=False)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    report = getattr(request.node, "report_call", None)
    for context in contexts:
        if report is not None and report.failed:
            for page in context.pages:  # what the browser showed when the test failed
                try:
                    print(f"--- page {page.url} ---\n{page.inner_text('body')[:3000]}")
                except Exception as exc:
                    print(f"--- page {page.url}: unreadable ({exc}) ---")
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Any]) -> Any:
    return new_page()


# -- the provider and its platforms ---------------------------------------------------------------


def _platform(live_settings: Any, client_id: str, name: str, *, first_party: bool) -> Iterator[RelyingParty]:
    port = free_port()
    party = RelyingParty(
        client_id=client_id,
        client_name=name,
        client_secret=f"{client_id}-secret-0123456789-0123456789-0123",
        url=f"http://127.0.0.1:{port}",
        first_party=first_party,
    ).start(live_settings.issuer, port)
    try:
        yield party
    finally:
        party.stop()


@pytest.fixture
def portal(live_settings: Any) -> Iterator[RelyingParty]:
    """A first-party platform: no consent page."""
    yield from _platform(live_settings, "portal", "省政务服务网", first_party=True)


@pytest.fixture
def tax(live_settings: Any) -> Iterator[RelyingParty]:
    """A platform that must ask for consent."""
    yield from _platform(live_settings, "etax", "电子税务局", first_party=False)


@pytest.fixture
def provider(
    live_settings: Any,
    live_services: Any,
    live_port: int,
    portal: RelyingParty,
    tax: RelyingParty,
    tmp_path: Path,
) -> Iterator[LiveServer]:
    """gunicorn serving the provider, with both platforms registered and 张三 (verified) provisioned."""
    live_services.clients.register(portal.registration())
    live_services.clients.register(tax.registration())
    live_services.persons.upsert(PERSON)
    server = start_gunicorn(live_settings, live_port, tmp_path, workers=2, threads=4)
    try:
        yield server
    finally:
        server.stop()
        tail = server.log_tail()
        if "Traceback" in tail or "ERROR" in tail:
            print(f"--- gunicorn log ---\n{tail}")
