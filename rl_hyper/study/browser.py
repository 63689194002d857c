"""Open a report in headless Chromium: check that its tables and plots render, keep a screenshot.

    rl-hyper report results/quickstart --screenshot    # prints the check and the screenshot's path
    check = render_in_browser(Path("results/quickstart/report/report.html"), Path("/tmp/report.png"))

Chromium (Debian: `apt-get install chromium`; chromium-browser and google-chrome are found too)
runs twice, headless: first on a copy of the page with a small script that, once the page has
loaded, writes into it what rendered (images, those decoded to a non-zero size, tables, table
rows, page height), read back from the DOM Chromium dumps; then for a screenshot of the whole
page at that height. An image whose data does not decode counts as broken.

A live web app such as the Ray dashboard (a single-page JavaScript app behind token auth) is
driven through Chromium's DevTools protocol instead: `render_ray_dashboard` logs in with the
cluster's token as the dashboard's own token dialog does, opens a view, waits until its text
shows what is expected and keeps a screenshot:

    text = render_ray_dashboard("http://127.0.0.2:8265", Path("/tmp/jobs.png"), expect=job_id, token=token)
"""

from __future__ import annotations

import asyncio
import base64
import html
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH = 1100  # px, the page's max-width plus margins
MAX_HEIGHT = 30_000  # px: Chromium's screenshots get unreliable beyond this
APP_WINDOW = "1920,1000"  # px, the window `render_url` opens: wide enough for the dashboard's tables
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


def _browser(browser: str | None) -> str:
    browser = browser or find_browser()
    if browser is None:
        raise BrowserError(f"no Chromium found (looked for {', '.join(BROWSERS)}); on Debian: apt-get install chromium")
    return browser


def _command(browser: str, profile: str, *args: str) -> list[str]:
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={profile}", *args]


def _run(browser: str, profile: str, *args: str) -> str:
    command = _command(browser, profile, *args)
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
    browser = _browser(browser)
    # a Chromium helper process can still be writing into its profile after the browser exits:
    # the profile's removal must not fail the render (it is a temporary folder)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as work:
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


def render_url(url: str, screenshot: Path, expect: str, login: str | None = None, timeout: float = 60.0,
               browser: str | None = None) -> str:
    """Open `url` in headless Chromium, wait until the page's text contains `expect`, save a PNG.

    `login`: JavaScript run first in a page of the same origin (a promise is awaited; it must
    come to a true value), after which `url` is loaded again. Returns the page's text (innerText);
    raises BrowserError if `expect` does not show within `timeout` seconds.
    """
    browser = _browser(browser)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:  # as in render_in_browser
        command = _command(browser, profile, "--remote-debugging-port=0", f"--window-size={APP_WINDOW}",
                           "about:blank")
        chromium = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file, deadline = Path(profile, "DevToolsActivePort"), time.time() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                if chromium.poll() is not None or time.time() > deadline:
                    raise BrowserError(f"{browser} did not open its DevTools port")
                time.sleep(0.2)
            port = int(port_file.read_text().split()[0])
            return asyncio.run(_drive(port, url, screenshot, expect, login, timeout))
        finally:
            chromium.terminate()
            try:
                chromium.wait(timeout=10)
            except subprocess.TimeoutExpired:
                chromium.kill()
                chromium.wait()


async def _drive(port: int, url: str, screenshot: Path, expect: str, login: str | None, timeout: float) -> str:
    """The DevTools protocol session of `render_url` (aiohttp: a dependency of ray[default])."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
            target = next(t for t in await response.json() if t["type"] == "page")
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            ids = itertools.count(1)

            async def call(method: str, **params) -> dict:
                call_id = next(ids)
                await socket.send_json({"id": call_id, "method": method, "params": params})
                async for message in socket:  # skip events until the answer
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    answer = json.loads(message.data)
                    if answer.get("id") == call_id:
                        if "error" in answer:
                            raise BrowserError(f"{method}: {answer['error'].get('message')}")
                        return answer["result"]
                raise BrowserError("the browser closed the DevTools connection")

            async def evaluate(expression: str):
                result = await call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
                if "exceptionDetails" in result:
                    raise BrowserError(f"{expression[:60]}...: {result['exceptionDetails'].get('text')}")
                return result["result"].get("value")

            async def load(deadline: float) -> None:  # a new document each time (a fresh app start)
                await call("Page.navigate", url="about:blank")
                if error := (await call("Page.navigate", url=url)).get("errorText"):
                    raise BrowserError(f"{url}: {error}")
                while not await evaluate("location.href !== 'about:blank' && document.readyState === 'complete'"):
                    if time.time() > deadline:
                        raise BrowserError(f"{url} did not load in {timeout:.0f} s")
                    await asyncio.sleep(0.2)

            deadline = time.time() + timeout
            await load(deadline)
            if login is not None:
                if not await evaluate(login):
                    raise BrowserError(f"logging in to {url} failed")
                await load(deadline)
            text = ""
            while expect not in text:
                if time.time() > deadline:
                    raise BrowserError(f"{url} did not show {expect!r} in {timeout:.0f} s; its text:\n{text[-2000:]}")
                await asyncio.sleep(0.5)
                text = await evaluate("document.body ? document.body.innerText : ''")
            await asyncio.sleep(1.0)  # let the last rows and icons paint
            text = await evaluate("document.body.innerText")
            shot = await call("Page.captureScreenshot", format="png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    return text


def render_ray_dashboard(address: str, screenshot: Path, expect: str, token: str | None = None,
                         view: str = "jobs", timeout: float = 60.0, browser: str | None = None) -> str:
    """Render a view of the Ray dashboard at `address` (`http://HOST:8265`) as a browser shows it.

    `token`: the cluster's token (`ray get-auth-token`), sent to the dashboard's `/api/authenticate`
    as its token dialog does, which sets the dashboard's cookie. `view`: the part after `#/`
    (`jobs`, `cluster`, `actors`, ...). Waits until the page's text contains `expect`, saves a
    screenshot and returns the page's text.
    """
    login = None
    if token is not None:
        login = ("fetch('/api/authenticate', {method: 'POST', headers: {Authorization: 'Bearer ' + "
                 f"{json.dumps(token)}}}}}).then(response => response.ok)")
    return render_url(f"{address.rstrip('/')}/#/{view}", screenshot, expect, login, timeout, browser)
