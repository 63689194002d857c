"""Open a report in headless Chromium: check that its tables and plots render, keep a screenshot.

    rl-hyper report results/quickstart --screenshot    # prints the check and the screenshot's path
    check = render_in_browser(Path("results/quickstart/report/report.html"), Path("/tmp/report.png"))

Chromium (Debian: `apt-get install chromium`; chromium-browser and google-chrome are found too)
runs twice, headless: first on a copy of the page with a small script that, once the page has
loaded, writes into it what rendered (images, those decoded to a non-zero size, tables, table
rows, page height), read back from the DOM Chromium dumps; then for a screenshot of the whole
page at that height. An image whose data does not decode counts as broken.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH = 1100  # px, the page's max-width plus margins
MAX_HEIGHT = 30_000  # px: Chromium's screenshots get unreliable beyond this
_CHECK_SCRIPT = (
    "<script>window.addEventListener('load', () => {"
    "const images = [...document.images];"
    "document.body.setAttribute('data-render-check', JSON.stringify({"
    "images: images.length,"
    "decoded: images.filter(image => image.complete && image.naturalWidth > 0).length,"
    "tables: document.querySelectorAll('table').length,"
    "rows: document.querySelectorAll('tbody tr').length,"
    "height: document.documentElement.scrollHeight}));"
    "});</script>"
)


class BrowserError(RuntimeError):
    """No Chromium found, or it failed to render the page."""


def find_browser() -> str | None:
    """Path of a Chromium-family browser on PATH, or None."""
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def _run(browser: str, profile: str, *args: str) -> str:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as error:
        raise BrowserError(f"{browser} did not finish in 120 s") from error
    if done.returncode != 0:
        raise BrowserError(f"{browser} exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


def render_in_browser(page: Path, screenshot: Path, browser: str | None = None) -> dict:
    """Render `page` (an HTML file) in headless Chromium and save a full-page PNG to `screenshot`.

    Returns {"images", "decoded", "broken", "tables", "rows", "height", "screenshot"}.
    """
    browser = browser or find_browser()
    if browser is None:
        raise BrowserError(f"no Chromium found (looked for {', '.join(BROWSERS)}); on Debian: apt-get install chromium")
    with tempfile.TemporaryDirectory() as work:
        probe = Path(work, "page.html")
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", f"{_CHECK_SCRIPT}</body>"), encoding="utf-8")
        dom = _run(browser, str(Path(work, "profile")), "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
        found = re.search(r'data-render-check="([^"]*)"', dom)
        if not found:
            raise BrowserError(f"{browser} rendered {page} but the page's load event never ran")
        check = json.loads(html.unescape(found.group(1)))
        height = max(200, min(int(check["height"]), MAX_HEIGHT))
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        _run(browser, str(Path(work, "profile")), f"--window-size={WIDTH},{height}",
             f"--screenshot={screenshot.resolve()}", page.resolve().as_uri())
    if not screenshot.is_file():
        raise BrowserError(f"{browser} wrote no screenshot to {screenshot}")
    return {**check, "broken": check["images"] - check["decoded"], "screenshot": str(screenshot)}
