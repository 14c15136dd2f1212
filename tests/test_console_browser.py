"""End to end in a real headless Chromium: sign up, sign in, create and copy a key, call the API, see it.

The gateway runs under gunicorn (two workers, so the session and CSRF secret must be shared through
var/secret_key). Debian's chromium and chromium-driver drive the browser; nothing is downloaded: the
driver's path is given, so selenium-manager is never run (SE_MANAGER_PATH points nowhere to make sure).
Screenshots of every page (1366x768) land in var/screenshots/ for a reviewer. Without Chromium the
test is skipped with a loud reason locally, and fails in CI (CI=true).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, update
from werkzeug.security import generate_password_hash

from gateway.store.tables import users
from tests.fakes.gateway_server import REPO, GatewayServer, run_gateway, store_url

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = REPO / "var" / "screenshots"
WIDTH, HEIGHT = 1366, 768
WAIT = 10  # seconds for a page or an element
PASSWORD = "browser test password"


def _require_browser() -> None:
    reason = None
    try:
        import selenium  # noqa: F401
    except ImportError:
        reason = "selenium is not installed (pip install -e '.[dev]')"
    if reason is None and not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        reason = f"{CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the browser test must run in CI: {reason}")
    pytest.skip(f"BROWSER TEST SKIPPED: {reason}")


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # If selenium ever tried to fetch a driver, this makes it fail instead of reaching the network.
    monkeypatch.setenv("SE_MANAGER_PATH", str(tmp_path / "no-selenium-manager"))
    monkeypatch.delenv("SE_CHROMEDRIVER", raising=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayServer]:
    with store_url("sqlite", tmp_path) as url, run_gateway(tmp_path, url, workers=2, threads=4) as gw:
        yield gw


# The mock echo model at a price that makes one short request a visible part of a small budget.
PRICED_TOML = """
[providers.priced]
type = "mock"
[providers.priced.models.echo]
input_price = 2000.0
output_price = 2000.0
"""


@pytest.fixture
def priced_gateway(tmp_path: Path) -> Iterator[GatewayServer]:
    with (
        store_url("sqlite", tmp_path) as url,
        run_gateway(tmp_path, url, workers=2, threads=4, extra_toml=PRICED_TOML) as gw,
    ):
        yield gw


class Page:
    """The browser on the gateway's console, with the few moves the test makes."""

    def __init__(self, driver, base_url: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.base_url = base_url
        self.wait = WebDriverWait(driver, WAIT)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    def find(self, css: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def fill(self, **fields: str) -> None:
        for name, value in fields.items():
            box = self.find(f"[name={name}]")
            box.clear()
            box.send_keys(value)

    def submit(self, css: str, then: str) -> None:
        """Click a submit button and wait for the next page, which has the element `then`."""
        self.press(self.find(css), then)

    def press(self, button, then: str) -> None:
        """Click a button found already and wait for the next page, which has the element `then`."""
        from selenium.common.exceptions import WebDriverException

        old = self.find("html")
        button.click()

        def left(_driver) -> bool:
            # The old page is gone once its root cannot be read. chromedriver reports that as a
            # stale element, or mid-navigation as "Node … does not belong to the document".
            try:
                old.is_enabled()
            except WebDriverException:
                return True
            return False

        self.wait.until(left)
        self.find(then)

    def shoot(self, name: str) -> None:
        """Save the window as the user sees it, and the whole page for long ones."""
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        full = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"captureBeyondViewport": True, "format": "png"}
        )
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        if height > HEIGHT:
            (SCREENSHOTS / f"{name}-full.png").write_bytes(base64.b64decode(full["data"]))


def make_admin(gateway: GatewayServer, email: str) -> None:
    """Give a console password to an admin made with the CLI (cheap hash: a test)."""
    gateway.cli("users", "create", email, "--admin")
    give_password(gateway, email)


def give_password(gateway: GatewayServer, email: str) -> None:
    """Let a user made with the CLI sign in to the console with PASSWORD."""
    engine = create_engine(gateway.database_url)
    try:
        with engine.begin() as conn:
            hashed = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
            conn.execute(update(users).where(users.c.email == email).values(password_hash=hashed))
    finally:
        engine.dispose()


def test_a_new_person_signs_up_creates_a_key_calls_the_api_and_sees_the_call(browser, gateway):
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    page = Page(browser, gateway.base_url)
    email = f"new-{uuid.uuid4().hex[:6]}@example.com"

    page.open("/")
    page.find("#signin-submit")
    assert page.path() == "/console/signin"
    page.shoot("01-signin")
    page.find("a[href='/console/signup']").click()
    page.find("#signup-submit")
    page.shoot("02-signup")
    page.fill(email=email, password=PASSWORD, confirm=PASSWORD + "?")
    page.submit("#signup-submit", then=".error")
    page.shoot("03-signup-error")
    page.fill(email=email, password=PASSWORD, confirm=PASSWORD)
    page.submit("#signup-submit", then="#create-key")
    assert page.path() == "/console/keys"

    # Sign out and back in, the way a returning person would.
    page.submit("#signout", then="#signin-submit")
    page.fill(email=email, password="not the password")
    page.submit("#signin-submit", then=".alert")
    page.shoot("04-signin-refused")
    page.fill(email=email, password=PASSWORD)
    page.submit("#signin-submit", then="#create-key")
    page.shoot("05-keys-empty")

    page.fill(name="my laptop", limit_usd="5")
    page.find("input[value='mock:echo']").click()
    page.submit("#create-key", then="#new-key")
    page.find("#copy-key").click()
    # The copy button copies the text of the element it names: that is the key a person gets.
    target = page.find("#copy-key").get_attribute("data-copy-target")
    key = page.find(f"#{target}").text.strip()
    assert key.startswith("sk-") and len(key) >= 43
    assert "you will not see this again" in page.find("#created-key").text
    page.shoot("06-key-created")

    request_id = "req-browser-" + uuid.uuid4().hex[:12]
    resp = requests.post(
        gateway.api_base + "/chat/completions",
        headers={"Authorization": f"Bearer {key}", "X-Request-Id": request_id},
        json={"model": "mock:echo", "messages": [{"role": "user", "content": "Hi from the browser test"}]},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "Hi from the browser test"

    page.open("/console/usage")
    page.find("#latest-requests")
    browser.refresh()
    latest = page.find("#latest-requests").text
    assert request_id in latest and "mock:echo" in latest
    page.shoot("07-usage")

    page.open("/console/keys")
    listing = page.find("#keys-table").text
    assert "my laptop" in listing and key[:10] in listing
    assert key not in browser.page_source, "the full key must not appear after creation"
    page.shoot("08-keys-list")

    page.open("/console/quickstart")
    assert gateway.base_url + "/api/v1" in page.find("#base-url").text
    assert "mock:echo" in page.find("#snippet-python").text
    page.shoot("09-quickstart")

    page.open("/console/keys")
    page.find("a.danger-outline").click()
    page.find("#confirm-revoke")
    page.shoot("10-revoke-confirm")
    page.submit("#confirm-revoke", then=".notice")
    assert "revoked" in page.find("#keys-table").text
    page.shoot("11-key-revoked")

    page.open("/console/admin/users")
    assert "administrators only" in page.find("main").text
    page.shoot("12-admin-forbidden")
    page.open("/console/no-such-page")
    assert "Not Found" in page.find("main").text
    page.shoot("13-not-found")

    admin = f"admin-{uuid.uuid4().hex[:6]}@example.com"
    make_admin(gateway, admin)
    page.submit("#signout", then="#signin-submit")
    page.fill(email=admin, password=PASSWORD)
    page.submit("#signin-submit", then="#create-key")
    page.open("/console/admin/users")
    assert email in page.find("#users-table").text
    page.shoot("14-admin-users")
    page.open("/console/admin/keys")
    assert key[:10] in page.find("#all-keys").text and key not in browser.page_source
    page.shoot("15-admin-keys")
    page.open("/console/admin/usage")
    assert request_id in page.find("#latest-requests").text
    page.shoot("16-admin-usage")
    page.open("/console/admin/users")
    rows = page.driver.find_elements("css selector", "#users-table tbody tr")
    row = next(r for r in rows if email in r.text)
    row.find_element("link text", "Credit").click()
    page.fill(amount_usd="12.5", note="welcome credit")
    page.shoot("17-admin-credit")
    page.submit("#credit-submit", then=".notice")
    assert "$12.50 credited" in page.find(".notice").text
    page.shoot("18-admin-credited")

    page.find("a[href='/console/password']").click()
    page.fill(current_password=PASSWORD, password="a brand new passphrase", confirm="a different one!")
    page.submit("#password-submit", then=".error")
    page.shoot("19-password-error")


def test_a_team_owner_adds_a_member_makes_a_team_key_and_sees_the_budget_bar(browser, priced_gateway):
    gateway = priced_gateway
    owner, member = (f"{who}-{uuid.uuid4().hex[:6]}@example.com" for who in ("owner", "member"))
    for email in (owner, member):
        gateway.cli("users", "create", email)
    give_password(gateway, owner)
    gateway.cli("teams", "create", "research")
    gateway.cli("teams", "add", "research", owner, "--role", "owner")
    gateway.cli("teams", "credit", "research", "10")
    gateway.cli("teams", "budget", "research", "--budget", "1", "--period", "month")
    page = Page(browser, gateway.base_url)

    page.open("/console/signin")
    page.fill(email=owner, password=PASSWORD)
    page.submit("#signin-submit", then="#create-key")
    page.find("a[href='/console/teams']").click()
    assert "research" in page.find("#teams-table").text
    page.shoot("team-01-list")
    page.find("#teams-table a").click()
    page.find("#members-table")
    bar = page.find("#team-budget progress")
    assert (bar.get_attribute("max"), bar.get_attribute("value")) == ("100", "0")
    assert "$0.00 of $1.00 this month" in page.find("#team-budget").text
    page.shoot("team-02-page")

    page.fill(email="nobody@example.com")
    page.submit("#add-member", then=".error")
    assert "no account with this email" in page.find(".error").text
    page.fill(email=member)
    page.submit("#add-member", then=".notice")
    assert f"{member} is now a member" in page.find(".notice").text
    assert member in page.find("#members-table").text
    page.shoot("team-03-member-added")

    page.fill(name="owner notebook")
    page.submit("#create-team-key", then="#new-key")
    key = page.find("#new-key").text.strip()
    assert key.startswith("sk-") and "you will not see this again" in page.find("#created-key").text
    page.shoot("team-04-key-created")
    listed = json.loads(gateway.cli("keys", "list", "--user", owner, "--json").stdout)
    (key_id,) = [k["id"] for k in listed if k["prefix"] == key[:10]]
    gateway.cli("keys", "budget", str(key_id), "--budget", "0.5", "--period", "day")

    resp = requests.post(
        gateway.api_base + "/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "priced:echo", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi team"}]},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    shown = json.loads(gateway.cli("teams", "show", "research", "--json").stdout)
    spent = shown["period_spent_micros"]
    assert spent > 0
    page.open(f"/console/teams/{shown['id']}")  # not a reload: that would send the key's form again
    bar = page.find("#team-budget progress")
    assert bar.get_attribute("value") == str(spent * 100 // 1_000_000)
    assert "this month" in page.find("#team-budget").text and "resets" in page.find("#team-budget").text
    assert key[:10] in page.find("#team-keys").text and key not in browser.page_source
    assert len(browser.find_elements("css selector", "#team-keys tbody tr")) == 1
    usage = page.find("#team-usage").text
    assert owner in usage and "priced:echo" in usage
    page.shoot("team-05-budget-spent")
    page.open("/console/usage")
    assert "$1.00 this month" in page.find("#budgets").text and "Team research" in page.find("#budgets").text
    page.shoot("team-06-usage-budgets")
    page.open("/console/keys")
    assert "team research" in page.find("#keys-table").text
    bar = page.find("#keys-table progress")
    assert bar.get_attribute("value") == str(spent * 100 // 500_000)
    assert "of $0.50 this day" in page.find("#keys-table").text
    page.shoot("team-07-keys")
    page.open(f"/console/teams/{shown['id']}")

    rows = page.driver.find_elements("css selector", "#members-table tbody tr")
    row = next(r for r in rows if member in r.text)
    page.press(row.find_element("css selector", "button"), then=".notice")
    assert f"{member} is no longer in the team" in page.find(".notice").text
    assert member not in page.find("#members-table").text
    page.shoot("team-08-member-removed")
