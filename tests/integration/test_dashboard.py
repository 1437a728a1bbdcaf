"""The dashboard and Swagger UI in a real, headless Chromium (Debian's `chromium`, driven by
Playwright for Python through `executable_path`), against a real web process, the session's
worker and the sandbox. Every request the browser makes to another host is refused and fails
the test: the pages must work offline.

Screenshots of each view are saved under test-artifacts/dashboard/ (TEST_ARTIFACTS moves it).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import requests

from tests.processes import ROOT, wait_until

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts")) / "dashboard"
API = "/api/v1/orchestrator"
MODEL = "gpt-4o-mini"
WAIT_MS = 15_000

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: `apt-get install chromium` (make install does it "
                                                "where apt is available) or set CHROMIUM to a Chromium binary"),
    pytest.mark.usefixtures("fresh_sandbox"),
]


@pytest.fixture(scope="module")
def web(served):
    return served


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


class Tab:
    """A browser tab on the web process that refuses any other host and records page errors."""

    def __init__(self, browser, web: str, **context):
        self.web = web
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.offsite: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._only_local)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)

    def _only_local(self, route) -> None:
        if route.request.url.startswith(self.web):
            route.continue_()
        else:
            self.offsite.append(route.request.url)
            route.abort()

    def _console(self, message) -> None:
        # The browser logs every answer that is not a 2xx (the admin probe's 403, a wrong key's
        # 401): what the page makes of those, the tests read on the page.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def sign_in(self, key: str, view: str = "models") -> None:
        self.page.goto(f"{self.web}/dashboard#{view}")
        self.page.fill("#api-key", key)
        self.page.click("#login button[type=submit]")
        self.page.wait_for_selector("#nav:not([hidden])")
        assert key not in self.page.url
        assert not self.page.is_visible("#login")

    def show(self, view: str) -> None:
        """Open the view and wait until it has loaded."""
        self.page.click(f"#nav a[data-view={view}]")
        self.page.wait_for_selector(f"#view-{view}:not([hidden])[aria-busy=false]")

    def cell(self, table: str, key: str, column: str):
        return self.page.locator(f"{table} tr[data-key='{key}'] td[data-col='{column}']")

    def chart(self, canvas: str) -> dict:
        return self.page.evaluate(
            "id => { const c = Chart.getChart(id); return {labels: c.data.labels, "
            "datasets: c.data.datasets.map(d => ({label: d.label, data: d.data}))}; }", canvas)

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)

    def close(self) -> None:
        self.context.close()
        assert not self.offsite, f"the page asked for other hosts: {self.offsite}"
        assert not self.errors, f"the page logged errors: {self.errors}"


@pytest.fixture
def tab(browser, web):
    opened = Tab(browser, web, viewport={"width": 1366, "height": 900})
    yield opened
    opened.close()


def money(usd: float) -> str:
    """As the page writes it (dom.js)."""
    return f"${usd:.2f}" if abs(usd) >= 1 else f"${usd:.6f}"


def call(web: str, key: str, method: str, path: str, **kwargs) -> dict:
    reply = requests.request(method, f"{web}{API}{path}", headers={"Authorization": f"Bearer {key}"},
                             timeout=30, **kwargs)
    reply.raise_for_status()
    return reply.json()


def chat(web: str, key: str, text: str) -> dict:
    return call(web, key, "POST", "/chat/execute", json={"message": text, "model": MODEL})


def new_key(services, name: str) -> str:
    return services.users.create(name)[1].key


def test_the_models_view_shows_the_requests_made_through_the_stack(tab, web, api_key):
    answers = [chat(web, api_key, f"Say hello number {i}") for i in range(3)]
    reported = {m["model"]: m for m in call(web, api_key, "GET", "/analytics/models?window=day")["models"]}[MODEL]
    assert reported["requests"] == len(answers) and reported["successes"] == len(answers)

    tab.sign_in(api_key)
    assert not tab.page.is_visible("#subject-picker")  # the admin's alone
    requests_cell = tab.cell("#models-table", MODEL, "requests")
    assert requests_cell.inner_text() == str(reported["requests"])
    assert tab.cell("#models-table", MODEL, "success_rate").inner_text() == "100.0%"
    assert tab.cell("#models-table", MODEL, "cost").inner_text() == money(reported["cost"])
    chart = tab.chart("models-requests-chart")
    assert chart["labels"] == [MODEL]
    assert chart["datasets"][0] == {"label": "requests", "data": [reported["requests"]]}
    tab.screenshot("models")

    chat(web, api_key, "One more")  # another window's read shows it: the view reads the API, not a copy
    tab.page.select_option("#models-window", "hour")
    tab.page.wait_for_function(
        "n => document.querySelector(\"#models-table tr[data-key='gpt-4o-mini'] td[data-col=requests]\")"
        ".textContent === String(n)", arg=len(answers) + 1)
    tab.page.click("#models-table th[data-col=requests]")  # sorted by requests, most first
    assert tab.page.locator("#models-table tbody tr").first.get_attribute("data-key") == MODEL


def test_the_users_and_costs_views_add_up_to_what_was_billed(tab, web, api_key):
    answers = [chat(web, api_key, f"Count to {i}") for i in range(1, 4)]
    billed = sum(a["response"]["cost"] for a in answers)
    call(web, api_key, "POST", "/feedback", json={"request_id": answers[0]["request_id"], "rating": 5})
    call(web, api_key, "POST", "/feedback", json={"request_id": answers[1]["request_id"], "rating": "down",
                                                  "comment": "too long"})
    report = call(web, api_key, "GET", "/analytics/user")
    assert report["metrics"]["current_spend"] == pytest.approx(billed, abs=1e-6)
    given = report["ratings_given"]
    assert [(r["request_id"], r["rating"], r["thumbs"]) for r in given] == [
        (answers[1]["request_id"], None, "down"), (answers[0]["request_id"], 5, "")]

    tab.sign_in(api_key, "users")
    tab.page.wait_for_function("() => document.querySelector('#budget-text').textContent !== ''")
    assert money(report["metrics"]["current_spend"]) in tab.page.inner_text("#budget-text")
    by_model = tab.chart("users-requests-chart")["datasets"]
    assert [d["label"] for d in by_model] == [MODEL] and sum(by_model[0]["data"]) == 3
    assert tab.chart("users-spend-chart")["datasets"][0]["data"][-1] == pytest.approx(billed, abs=1e-6)
    assert tab.cell("#users-ratings", answers[0]["request_id"], "rating").inner_text() == "5"
    assert tab.cell("#users-ratings", answers[1]["request_id"], "comment").inner_text() == "too long"
    assert tab.cell("#users-ratings", answers[1]["request_id"], "model").inner_text() == MODEL
    tab.screenshot("users")

    tab.show("costs")
    tab.page.wait_for_selector("#costs-recent tbody tr")
    spend = call(web, api_key, "GET", "/analytics/spend?days=14")
    assert tab.page.inner_text("#costs-total") == money(spend["total_cost"]) == money(billed)
    recent = call(web, api_key, "GET", "/analytics/requests")["requests"]
    assert [r["request_id"] for r in recent] == [a["request_id"] for a in reversed(answers)]
    for answer in answers:
        row = answer["request_id"]
        assert tab.cell("#costs-recent", row, "cost").inner_text() == money(answer["response"]["cost"])
        estimated = answer["routing_decision"]["estimated_cost"]
        assert tab.cell("#costs-recent", row, "estimated_cost").inner_text() == money(estimated)
    assert tab.chart("costs-estimate-chart")["datasets"][1]["data"] == [a["response"]["cost"] for a in answers]
    tab.screenshot("costs")


def test_a_batch_progress_bar_moves_and_the_batch_is_cancelled_from_the_health_view(tab, web, api_key, sandbox):
    requests.post(f"{sandbox}/_sandbox/faults", timeout=5,
                  json={"model": MODEL, "fault": "slow_first_token", "seconds": 1.0}).raise_for_status()
    batch_id = call(web, api_key, "POST", "/batch/submit", json={
        "requests": [{"task": f"item {i}", "model": MODEL} for i in range(64)], "priority": 0})["batch_id"]

    tab.sign_in(api_key, "health")
    tab.page.wait_for_selector("#health-status[data-status=healthy]")
    bar = tab.page.locator(f"#health-batches li[data-batch='{batch_id}'] progress")
    first = int(bar.get_attribute("value"))
    tab.page.wait_for_function(  # the page refreshes by itself: no reload
        "([id, seen]) => +document.querySelector(`li[data-batch='${id}'] progress`).getAttribute('value') > seen",
        arg=[batch_id, first])
    moved = int(bar.get_attribute("value"))
    assert first < moved < 64
    workers = call(web, api_key, "GET", "/health")["workers"]["alive"]
    assert [tab.page.inner_text(f"#health-workers tr[data-key='{name}'] td[data-col=name]") for name in workers] == workers
    tab.screenshot("health")

    tab.page.click(f"#health-batches li[data-batch='{batch_id}'] button.cancel")
    tab.page.wait_for_selector(f"#health-batches li[data-batch='{batch_id}'][data-status=cancelled]")
    status = call(web, api_key, "GET", f"/batch/{batch_id}/status?limit=0")
    assert status["status"] == "cancelled" and status["counts"]["cancelled"] > 0
    wait_until(lambda: call(web, api_key, "GET", f"/batch/{batch_id}/status?limit=0")["counts"]["running"] == 0,
               15, "the running items to finish")


def test_one_user_cannot_see_another_users_data_and_the_admin_sees_both(browser, web, api_key, services, settings):
    batch_id = call(web, api_key, "POST", "/batch/submit", json={"requests": [{"task": "mine", "model": MODEL}]})["batch_id"]
    mine = chat(web, api_key, "Private question")
    owner = call(web, api_key, "GET", "/analytics/user")["user_id"]
    other_key = new_key(services, "someone else")

    other = Tab(browser, web)
    other.sign_in(other_key, "costs")
    other.page.wait_for_selector("#view-costs [data-state=empty]")
    assert other.page.locator("#costs-recent tbody tr").count() == 0
    assert other.page.inner_text("#costs-total") == money(0)
    other.show("health")
    other.page.wait_for_selector("#batches-empty:has-text('No batch')")
    assert other.page.locator(f"li[data-batch='{batch_id}']").count() == 0
    other.show("users")
    other.page.wait_for_function("() => document.querySelector('#budget-text').textContent !== ''")
    assert owner not in other.page.inner_text("#view-users")
    other.close()
    reply = requests.get(f"{web}{API}/analytics/requests?user_id={owner}",
                         headers={"Authorization": f"Bearer {other_key}"}, timeout=10)
    assert reply.status_code == 404

    admin = Tab(browser, web)
    admin.sign_in(settings.admin_api_key, "costs")
    assert admin.page.is_visible("#subject-picker")
    admin.page.select_option("#subject", owner)
    admin.cell("#costs-recent", mine["request_id"], "cost").wait_for()
    admin.close()


def test_the_try_it_panel_shows_the_answer_beside_the_routing_decision(tab, web, api_key):
    tab.sign_in(api_key, "try")
    tab.page.fill("#try-message", "Write a haiku about queues")
    tab.page.select_option("#try-strategy", "cost_optimal")
    tab.page.click("#try-form button[type=submit]")
    tab.page.wait_for_selector("#try-result:not([hidden])")
    newest = call(web, api_key, "GET", "/analytics/requests")["requests"][0]
    assert tab.page.inner_text("[data-fact='Model used']") == newest["model"]
    assert tab.page.inner_text("[data-fact='Cost']") == money(newest["cost"])
    assert tab.page.inner_text("#try-answer").strip()
    assert "cost_optimal strategy" in tab.page.inner_text("#try-reason")
    assert tab.page.locator("#try-candidates tbody tr").count() >= 2
    tab.screenshot("try-it")


def test_a_wrong_key_is_refused_and_signing_out_forgets_the_key(tab, api_key):
    tab.page.goto(f"{tab.web}/dashboard")
    tab.page.fill("#api-key", "orch-not-a-key")
    tab.page.click("#login button[type=submit]")
    tab.page.wait_for_selector("#login-error:has-text('invalid or revoked')")
    tab.sign_in(api_key)
    assert tab.page.evaluate("Object.values(sessionStorage)") == [api_key]
    tab.page.reload()  # the tab keeps its session
    tab.page.wait_for_selector("#nav:not([hidden])")
    tab.page.click("#sign-out")
    assert tab.page.evaluate("sessionStorage.length") == 0 and tab.page.is_visible("#login")


def test_the_dashboard_fits_a_phone(browser, web, api_key):
    phone = Tab(browser, web, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    chat(web, api_key, "Hello from a phone")
    phone.sign_in(api_key)
    phone.cell("#models-table", MODEL, "requests").wait_for()
    for view in ("models", "users", "health", "costs"):
        phone.show(view)
        assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), view
    phone.show("models")
    phone.screenshot("models-phone")
    phone.close()


def test_swagger_ui_renders_from_the_package(tab):
    tab.page.goto(f"{tab.web}/docs")
    title = tab.page.wait_for_selector(".swagger-ui .info .title")
    assert re.match(r"AI Model Orchestrator", title.inner_text())
    assert tab.page.locator(".opblock-summary-path[data-path='/api/v1/orchestrator/batch']").count() >= 1
    tab.screenshot("swagger-ui")
