"""Take docs/dashboard.png: the portfolio page of a demo workspace, 1400px wide.

Builds a demo workspace (generated accounts, two daily runs a week apart),
serves it on a free loopback port, signs in through the real login form with
Playwright driving Debian's Chromium (/usr/bin/chromium) and saves the page.

    .venv/bin/python scripts/screenshot.py [--accounts 2000] [--out docs/dashboard.png]
        [--page /accounts --page /accounts/ACC-000095 ...]

``--page`` adds more pages, saved beside the first as dashboard-<name>.png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/ holds the workspace builder and the live server

from tests.browser import ARGS, CHROMIUM  # noqa: E402
from tests.live_server import build_workspace, live_server  # noqa: E402


def _name(page: str) -> str:
    return page.strip("/").replace("/", "-").replace("?", "-").replace("=", "-") or "portfolio"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--page", action="append", default=[], help="another page to save")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        print(f"building a demo workspace with {args.accounts} accounts ...", flush=True)
        served = build_workspace(Path(tmp) / "ws", accounts=args.accounts)
        with live_server(served.ws) as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
            context = browser.new_context(
                base_url=server.url, viewport={"width": 1400, "height": 900}
            )
            page = context.new_page()
            page.goto("/login")
            page.fill("#token", served.admin_token)
            page.click("button[type=submit]")
            page.wait_for_url(server.url + "/")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            for path in ["/", *args.page]:
                page.goto(path)
                # Every chart drawn before the picture is taken.
                page.wait_for_function(
                    "() => [...document.querySelectorAll('canvas[data-chart]')]"
                    ".every(c => c.dataset.drawn === '1')"
                )
                target = (
                    args.out
                    if path == "/"
                    else args.out.with_name(f"{args.out.stem}-{_name(path)}.png")
                )
                page.screenshot(path=str(target), full_page=True)
                print(f"saved {target}")
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
