"""``/status`` in a real browser: Debian's headless Chromium driven by selenium through Debian's chromedriver, in
front of the daemon as a subprocess and a real Nagios 4 of this module's own (one test stops it).

Nothing downloads a browser or a driver: the binary and the driver's path are given, and Selenium Manager is
told to stay offline. The tests run in order and share one browser, one engine and one bridge.

``UPDATE_SCREENSHOT=1`` also writes the page's screenshot to docs/status-page.png (the README shows it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bridge.daemon.sandbox import NagiosSandbox, SandboxHost, SandboxService
from bridge.engine.delivery import PROBE_INTERVAL
from bridge.http.status import REFRESH_SECONDS
from tests.conftest import ROOT, BridgeProcess, bridge_config, require_nagios, start_bridge
from tests.helpers import http

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ADMIN, WEBOPS = ("admin", "admin-pw"), ("webops", "webops-pw")
HOSTS = [SandboxHost("status-web1", (SandboxService("http"),)), SandboxHost("status-web2", (SandboxService("http"),)),
         SandboxHost("status-db", (SandboxService("disk"),))]
USERS = f'[[users]]\nname = "{ADMIN[0]}"\npassword = "{ADMIN[1]}"\n' \
        f'[[users]]\nname = "{WEBOPS[0]}"\npassword = "{WEBOPS[1]}"\nhosts = ["status-web*"]\n'
# Every service goes stale THRESHOLD s after its last result (or after the bridge started, for one that never
# reported): long enough that a fresh result stays fresh for more than a refresh of the page.
THRESHOLD = 12
FRESHNESS = '[freshness]\nsweep_interval = 0.2\n[[freshness.rules]]\nhost = "status-*"\nservice = "*"\n' \
    f'threshold = {THRESHOLD}\n'
# The page fetches its panels every REFRESH_SECONDS; the bridge sees a stopped engine within PROBE_INTERVAL.
WITHIN_A_REFRESH = REFRESH_SECONDS + PROBE_INTERVAL + 3

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def require_chromium() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} missing: .ci/run must install chromium and chromium-driver")
        pytest.skip(f"not installed: {', '.join(missing)} (Debian's chromium, chromium-driver)")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NagiosSandbox]:
    require_nagios()
    sandbox = NagiosSandbox(tmp_path_factory.mktemp("status-nagios"), HOSTS)
    sandbox.verify()
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def bridge(engine: NagiosSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    directory = tmp_path_factory.mktemp("status-bridge")
    process = start_bridge(bridge_config(directory / "bridge.toml", engine, known_objects=True, extra=FRESHNESS,
                                         users=USERS))
    process.wait_listening()
    yield process
    assert process.stop() == 0, process.log_text()


@contextmanager
def chromium(*, javascript: bool = True) -> Iterator[WebDriver]:
    """Debian's Chromium, headless, with a new empty profile and nothing that reaches out to the network."""
    require_chromium()
    profile = tempfile.mkdtemp(prefix="status-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1500"):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch anything, whatever it thinks is missing
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def wait(driver: WebDriver, condition, seconds: float, what: str):  # type: ignore[no-untyped-def]
    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(lambda d: condition(d), message=what)


# Read in one script each: the page swaps its panels in while a test looks, and an element found by one call may be
# gone by the next.
def text(driver: WebDriver, element_id: str) -> str:
    """An element's text as the server wrote it (whitespace collapsed; CSS may show it in capitals)."""
    return driver.execute_script(
        "const e = document.getElementById(arguments[0]);"
        "return e ? e.textContent.replace(/\\s+/g, ' ').trim() : '';", element_id)


def objects(driver: WebDriver, selector: str = "#objects tr[data-host]") -> list[tuple[str, str]]:
    return [tuple(pair) for pair in driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(r => [r.dataset.host, r.dataset.service]);", selector)]


def log_in(driver: WebDriver, bridge: BridgeProcess, user: tuple[str, str]) -> None:
    driver.get(f"{bridge.url}/status")
    wait(driver, lambda d: d.current_url.endswith("/status/login"), 10, "the login form")
    driver.find_element(By.ID, "username").send_keys(user[0])
    driver.find_element(By.ID, "password").send_keys(user[1])
    driver.find_element(By.ID, "submit").click()


def stale_rows(driver: WebDriver) -> list[tuple[str, str]]:
    return objects(driver, "#objects tr.stale")


def result(bridge: BridgeProcess, user: tuple[str, str], host: str, service: str, output: str = "fine") -> int:
    status, _ = http("POST", f"{bridge.url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                     {"host_name": host, "service_description": service, "status_code": 0,
                      "plugin_output": output}, auth=user)
    return status


def test_a_wrong_password_stays_on_the_login_form_with_a_message(browser: WebDriver, bridge: BridgeProcess) -> None:
    log_in(browser, bridge, (ADMIN[0], "not-the-password"))
    wait(browser, lambda d: text(d, "login-message"), 10, "the login form's message")
    assert browser.current_url.endswith("/status/login")
    assert text(browser, "login-message") == "Wrong user name or password."
    assert browser.find_element(By.ID, "password").get_attribute("value") == ""


def test_logged_in_through_the_form_the_page_shows_the_engine_reachable(browser: WebDriver,
                                                                        bridge: BridgeProcess) -> None:
    log_in(browser, bridge, ADMIN)
    wait(browser, lambda d: d.current_url.endswith("/status") and text(d, "engine-state"), 10, "the status page")
    assert text(browser, "engine-state").startswith("reachable")
    assert text(browser, "status") == "ok"
    assert "command pipe" in text(browser, "transport")
    assert browser.execute_script("return document.documentElement.classList.contains('live')") is True
    cookies = {cookie["name"]: cookie for cookie in browser.get_cookies()}
    session = cookies["naemon_bridge_status"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"


def test_a_result_for_a_stale_object_leaves_the_stale_list(browser: WebDriver, bridge: BridgeProcess) -> None:
    for round_ in range(10):  # something for the chart
        for host in ("status-web2", "status-db"):
            assert result(bridge, ADMIN, host, "http" if host != "status-db" else "disk", f"fine {round_}") == 200
    assert result(bridge, WEBOPS, "status-db", "disk") != 200  # a refusal for the list
    wait(browser, lambda d: ("status-web1", "http") in stale_rows(d), THRESHOLD + WITHIN_A_REFRESH,
         "status-web1/http listed stale")
    marker = browser.execute_script("return window.__status_marker = Math.random();")
    started = time.monotonic()
    assert result(bridge, ADMIN, "status-web1", "http", "back again") == 200
    wait(browser, lambda d: ("status-web1", "http") not in stale_rows(d), WITHIN_A_REFRESH,
         "status-web1/http to leave the stale list without a reload")
    assert browser.execute_script("return window.__status_marker;") == marker  # the panels changed, not the page
    assert time.monotonic() - started < WITHIN_A_REFRESH
    wait(browser, lambda d: "status-web1;http;0;back again" in text(d, "last-line"), WITHIN_A_REFRESH,
         "the last line delivered")
    browser.set_window_size(1280, 1500)
    png = browser.get_screenshot_as_png()
    assert png.startswith(b"\x89PNG")
    if os.environ.get("UPDATE_SCREENSHOT"):
        (ROOT / "docs" / "status-page.png").write_bytes(png)


def test_a_limited_user_sees_only_its_hosts(browser: WebDriver, bridge: BridgeProcess) -> None:
    browser.find_element(By.CSS_SELECTOR, "#logout button").click()
    wait(browser, lambda d: d.current_url.endswith("/status/login"), 10, "back on the login form")
    log_in(browser, bridge, WEBOPS)
    wait(browser, lambda d: d.current_url.endswith("/status") and text(d, "engine-state"), 10, "the status page")
    assert {host for host, _ in objects(browser)} == {"status-web1", "status-web2"}
    # status-db appears only in webops' own refused request (it named the host itself), nowhere else.
    assert "status-db" not in text(browser, "freshness") + text(browser, "engine")
    assert "status-db" in text(browser, "refused") and "webops" in text(browser, "refused")
    assert "limited" in text(browser, "who")
    # The filter box narrows the table as one types (the script), no submit needed.
    browser.find_element(By.ID, "q").send_keys("web2")
    wait(browser, lambda d: {host for host, _ in objects(d)} == {"status-web2"}, 10, "the filter to apply")


def test_without_javascript_the_form_the_page_and_its_filter_still_work(bridge: BridgeProcess) -> None:
    with chromium(javascript=False) as plain:
        log_in(plain, bridge, ADMIN)
        wait(plain, lambda d: d.current_url.endswith("/status") and text(d, "engine-state"), 10, "the status page")
        live = "return document.documentElement.classList.contains('live')"  # what the page's script sets
        assert plain.execute_script(live) is False
        assert text(plain, "engine-state").startswith("reachable")
        refresh = plain.find_element(By.CSS_SELECTOR, "noscript")  # it reloads itself instead
        assert 'http-equiv="refresh"' in refresh.get_attribute("innerHTML")
        plain.find_element(By.ID, "q").send_keys("status-db")
        plain.find_element(By.CSS_SELECTOR, "#filter button").click()  # a plain GET form
        wait(plain, lambda d: d.current_url.endswith("/status?q=status-db&sort=stale"), 10, "the filtered page")
        assert {host for host, _ in objects(plain)} == {"status-db"}


def test_stopping_the_engine_turns_the_page_degraded_within_its_refresh(browser: WebDriver, bridge: BridgeProcess,
                                                                        engine: NagiosSandbox) -> None:
    browser.find_element(By.ID, "q").clear()
    assert text(browser, "status") == "ok"
    marker = browser.execute_script("return window.__status_marker = Math.random();")
    engine.stop()
    wait(browser, lambda d: text(d, "status") == "degraded", WITHIN_A_REFRESH, "the page to say degraded")
    assert text(browser, "engine-state").startswith("not reachable")
    assert "the engine does not take commands" in text(browser, "status-banner")
    assert browser.execute_script("return window.__status_marker;") == marker
