"""The portfolio, accounts and account pages in a real browser (Playwright, Debian's Chromium).

Each test watches the page for console errors, failed requests and error
responses, and checks that every chart canvas was drawn with data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.browser import browser, signed_in  # noqa: F401  (the fixture)
from tests.live_server import AS_OF, LiveServer, ServedWorkspace, build_workspace, live_server
from touchmodel.state.db import Store
from touchmodel.state.tables import Assignment, Snapshot

SCRIPT = "<script>alert(1)</script>"
PORTFOLIO_CHARTS = {"chart-arr-tier", "chart-level", "chart-health", "chart-trend"}
ACCOUNT_CHARTS = {"chart-signals", "chart-health-trend", "chart-health-points"}


@dataclass
class Served:
    built: ServedWorkspace
    server: LiveServer
    hostile: str  # the account named SCRIPT (in the csm's book)
    other: str  # an account in another book


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    built = build_workspace(tmp_path_factory.mktemp("dash-portfolio") / "ws")
    store = Store(built.ws.state_url)
    try:
        with store.transaction() as s:
            books = {a: c for a, c in s.execute(select(Assignment.account_id, Assignment.csm))}
            latest = s.scalars(
                select(Snapshot.account_id)
                .where(Snapshot.as_of == AS_OF)
                .order_by(Snapshot.account_id)
            ).all()
            hostile = next(a for a in latest if books.get(a) == built.csm_name)
            other = next(a for a in latest if a in books and books[a] != built.csm_name)
            s.execute(update(Snapshot).where(Snapshot.account_id == hostile).values(name=SCRIPT))
    finally:
        store.close()
    with live_server(built.ws) as server:
        yield Served(built, server, hostile, other)


@dataclass
class Watch:
    """What went wrong in the browser while a test ran."""

    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        page.on(
            "response",
            lambda r: self.failed.append(f"{r.url}: {r.status}") if r.status >= 400 else None,
        )

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)

    def clean(self) -> None:
        assert self.console_errors == []
        assert self.failed == []
        assert self.dialogs == []


def _open(browser: Any, served: Served, token: str | None = None) -> tuple[Any, Watch]:  # noqa: F811
    page: Any = signed_in(browser, served.server.url, token or served.built.admin_token)
    watch = Watch()
    watch.attach(page)
    return page, watch


def _charts(page: Any) -> dict[str, dict[str, str]]:
    """Every chart canvas on the page once app.js has drawn them all."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('canvas[data-chart]')].every(c => c.dataset.drawn === '1')"
    )
    found: dict[str, dict[str, str]] = page.eval_on_selector_all(
        "canvas[data-chart]",
        "cs => Object.fromEntries(cs.map(c => [c.dataset.chart,"
        " {drawn: c.dataset.drawn, points: c.dataset.points, width: String(c.width)}]))",
    )
    return found


def _all_drawn(charts: dict[str, dict[str, str]], expected: set[str]) -> None:
    assert set(charts) == expected
    for name, c in charts.items():
        assert c["drawn"] == "1", name
        assert int(c["points"]) > 0, name
        assert int(c["width"]) > 0, name


def test_portfolio_draws_every_chart(browser: Any, served: Served) -> None:  # noqa: F811
    page, watch = _open(browser, served)
    page.goto("/")
    _all_drawn(_charts(page), PORTFOLIO_CHARTS)
    kpis = page.locator(".acct-kpis .kpi .label").all_inner_texts()
    assert kpis == ["accounts", "ARR", "mean health score", "accounts at risk", "ARR at risk"]
    assert page.locator(".acct-kpis .kpi .value").first.inner_text() == "292"
    # The at-risk tile leads to the accounts filtered by that stage.
    page.click(".acct-kpis a[href='/accounts?stage=at_risk']")
    page.wait_for_url(re.compile(r"/accounts\?stage=at_risk$"))
    stages = page.locator(".acct-table tbody tr td:nth-child(6)").all_inner_texts()
    assert stages and set(stages) == {"at_risk"}
    watch.clean()
    page.context.close()


def test_accounts_table_filters_through_htmx_and_links_to_the_account(
    browser: Any,  # noqa: F811
    served: Served,
) -> None:
    page, watch = _open(browser, served)
    page.goto("/accounts")
    count = page.locator("#acct-count")
    everything = count.inner_text()
    assert everything.startswith("292 accounts")
    # A marker on the window survives an htmx swap but not a page load.
    page.evaluate("window.__kept = 'yes'")
    page.select_option("#acct-level", "high")
    page.wait_for_function(
        "() => !document.querySelector('#acct-count').innerText.startsWith('292 ')"
    )
    assert page.evaluate("window.__kept") == "yes"
    assert "level=high" in page.url  # the filters are in the address bar (hx-push-url)
    levels = page.locator(".acct-table tbody tr td:nth-child(5)").all_inner_texts()
    assert levels and set(levels) == {"high"}
    n_high = int(count.inner_text().split()[0])
    assert n_high == len(levels) or n_high > len(levels) == 50
    # Search narrows further, typed into the box (debounced by htmx).
    first_id = page.locator(".acct-table tbody tr td:first-child a").first.inner_text()
    page.fill("#acct-q", first_id)
    page.wait_for_function(
        "() => document.querySelector('#acct-count').innerText.startsWith('1 account')"
    )
    assert page.evaluate("window.__kept") == "yes"
    # Sorting by a header swaps the table too.
    page.select_option("#acct-level", "")
    page.fill("#acct-q", "")
    page.wait_for_function(
        "() => document.querySelector('#acct-count').innerText.startsWith('292 ')"
    )
    page.click(".acct-table th a:text('name')")
    page.wait_for_function(
        "() => document.querySelector('.acct-table th[aria-sort] a').innerText.startsWith('name')"
    )
    names = page.locator(".acct-table tbody tr td:nth-child(2)").all_inner_texts()
    assert names == sorted(names, reverse=True)
    assert page.evaluate("window.__kept") == "yes"
    # The CSV link follows the filters in use.
    href = page.get_attribute(".acct-csv", "href")
    assert href is not None and href.startswith("/accounts.csv?") and "sort=name" in href
    # Follow a link to an account page.
    link = page.locator(".acct-table tbody tr td:first-child a").first
    account_id = link.inner_text()
    link.click()
    page.wait_for_url(re.compile(rf"/accounts/{re.escape(account_id)}$"))
    _all_drawn(_charts(page), ACCOUNT_CHARTS)
    watch.clean()
    page.context.close()


def test_account_page_explains_the_account(browser: Any, served: Served) -> None:  # noqa: F811
    page, watch = _open(browser, served)
    page.goto("/accounts?level=high&sort=health&order=asc")
    page.locator(".acct-table tbody tr td:first-child a").first.click()
    page.wait_for_selector("#acct-why")
    _all_drawn(_charts(page), ACCOUNT_CHARTS)
    why = page.locator("#acct-why").inner_text()
    assert "Why touch level high" in why and "tier '" in why
    health_rows = page.locator("#acct-health tbody tr").count()
    assert health_rows >= 4  # one row per health measure of the model
    assert page.locator("#acct-history tbody tr").count() == 2  # two completed runs
    for link in page.locator("#acct-work a[href^='/queue']").all():
        assert (link.get_attribute("href") or "").startswith("/queue")
    watch.clean()
    page.context.close()


def test_a_csm_sees_only_their_book_and_a_script_name_stays_text(
    browser: Any,  # noqa: F811
    served: Served,
) -> None:
    page, watch = _open(browser, served, served.built.csm_token)
    page.goto("/")
    _all_drawn(_charts(page), PORTFOLIO_CHARTS)
    assert served.built.csm_name in page.locator("h1").inner_text()
    page.goto("/accounts")
    assert page.locator("#acct-csm").count() == 0  # no CSM filter for a book of one
    csms = page.locator(".acct-table tbody tr td:nth-child(9)").all_inner_texts()
    assert csms and set(csms) == {served.built.csm_name}
    # The hostile name is text in the table and on its page; no script ran.
    row = page.locator(f".acct-table tr:has(a:text-is('{served.hostile}'))")
    assert row.locator("td:nth-child(2)").inner_text() == SCRIPT
    page.goto(f"/accounts/{served.hostile}")
    assert page.locator("#acct-name").inner_text() == SCRIPT
    assert page.title().startswith(SCRIPT)
    _all_drawn(_charts(page), ACCOUNT_CHARTS)
    watch.clean()
    # Another book's account is refused (and the refusal is the only failed request).
    response = page.goto(f"/accounts/{served.other}")
    assert response is not None and response.status == 403
    assert "not in" in page.locator("[role=alert]").inner_text()
    assert watch.failed == [f"{served.server.url}/accounts/{served.other}: 403"]
    page.context.close()


def test_portfolio_lists_the_model_fit_findings_for_admins(
    browser: Any,  # noqa: F811
    served: Served,
) -> None:
    page, watch = _open(browser, served)
    page.goto("/")
    card = page.locator("#model-fit")
    assert card.is_visible()
    assert card.locator("h2").inner_text().startswith("Model fit")
    assert "At risk:" in card.inner_text() and "CSMs can work" in card.inner_text()
    checks = card.locator("tbody tr td:first-child").all_inner_texts()
    # The demo base: the two usage-decline triggers overlap, too many accounts at risk.
    assert "fire together" in checks and "at-risk share" in checks
    watch.clean()
    page.context.close()
    # A CSM's portfolio is their book: the model-wide findings are not on it.
    page, watch = _open(browser, served, served.built.csm_token)
    page.goto("/")
    assert page.locator("#model-fit").count() == 0
    watch.clean()
    page.context.close()
