"""Open every page of the built book in headless Chromium and check that it really works offline.

For each HTML page under the site folder (served on 127.0.0.1 by Python's ``http.server``):

* the browser console shows no errors (a missing file, a blocked CDN script, a JavaScript error);
* every ``<img>`` loaded (``naturalWidth > 0``);
* on pages with math, MathJax rendered it (``mjx-container`` elements, no ``mjx-merror``);

and a screenshot of each chapter is saved. Chromium runs with a fresh profile and with every host
other than 127.0.0.1 unreachable, so a page that needs the internet fails here.

Usage: ``python scripts/browser_check.py _build/html --screenshots _build/screenshots``
Needs Debian's ``chromium`` and ``chromium-driver`` (``make chromium``) and ``selenium``.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # offline: only the local server resolves
]
PAGE_TIMEOUT_S = 60

# Runs in the page: wait until MathJax (if loaded) has typeset, then describe the page.
INSPECT_PAGE = """
const done = arguments[arguments.length - 1];
const ready = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
const images = Array.from(document.images);
const loaded = Promise.all(images.map(image => image.complete ? null :
    new Promise(resolve => { image.onload = image.onerror = resolve; })));
Promise.all([ready, loaded]).then(() => done({
    title: document.title,
    mathSources: document.querySelectorAll('.math, span.math, div.math').length,
    mathRendered: document.querySelectorAll('mjx-container').length,
    mathErrors: document.querySelectorAll('mjx-merror').length,
    images: images.length,
    brokenImages: images.filter(image => image.naturalWidth === 0).map(image => image.getAttribute('src')),
    mathjaxLoaded: Boolean(window.MathJax && MathJax.version),
})).catch(error => done({error: String(error)}));
"""


@dataclass
class PageReport:
    """What the browser saw on one page; ``problems`` is empty when the page is fine."""

    path: str
    title: str = ""
    images: int = 0
    equations: int = 0
    problems: list[str] = field(default_factory=list)
    screenshot: str | None = None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def serve(directory: Path) -> ThreadingHTTPServer:
    """Serve ``directory`` on a free port of 127.0.0.1 in a background thread."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def find_executable(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(
        f"none of {names} found on PATH; install Debian's chromium and chromium-driver (`make chromium`)"
    )


def start_browser(profile_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = find_executable("chromium", "chromium-browser", "google-chrome")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=find_executable("chromedriver", "chromium-driver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    driver.set_script_timeout(PAGE_TIMEOUT_S)
    return driver


def is_chapter(relative: str) -> bool:
    return relative.startswith("book/") and relative.endswith(".html")


def check_page(driver, base_url: str, relative: str, screenshots: Path | None) -> PageReport:
    report = PageReport(relative)
    driver.get_log("browser")  # drop anything left from the previous page
    driver.get(f"{base_url}/{relative}")
    info = driver.execute_async_script(INSPECT_PAGE)
    if "error" in info:
        report.problems.append(f"page script failed: {info['error']}")
        return report
    report.title, report.images, report.equations = info["title"], info["images"], info["mathRendered"]
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            report.problems.append(f"console error: {entry.get('message')}")
    for source in info["brokenImages"]:
        report.problems.append(f"image did not load: {source}")
    if info["mathSources"] and not info["mathjaxLoaded"]:
        report.problems.append(f"{info['mathSources']} math element(s) but MathJax did not load")
    elif info["mathSources"] and not info["mathRendered"]:
        report.problems.append(f"{info['mathSources']} math element(s) but MathJax rendered none")
    if info["mathErrors"]:
        report.problems.append(f"MathJax could not typeset {info['mathErrors']} equation(s)")
    if screenshots is not None and is_chapter(relative):
        screenshots.mkdir(parents=True, exist_ok=True)
        target = screenshots / (Path(relative).stem + ".png")
        driver.save_screenshot(str(target))
        report.screenshot = str(target)
        # A second picture further down, where the first figure is, shows rendered outputs.
        if driver.execute_script(
            "const img = document.querySelector('.cell_output img');"
            "if (!img) return false; img.scrollIntoView({block: 'center'}); return true;"
        ):
            time.sleep(0.2)
            driver.save_screenshot(str(screenshots / (Path(relative).stem + "-figure.png")))
    return report


def check_site(site: Path, screenshots: Path | None = None) -> list[PageReport]:
    """Check every HTML page under ``site``; return one report per page."""
    site = Path(site)
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"{site}/index.html not found: build the site first (`make site`)")
    pages = sorted(
        path.relative_to(site).as_posix()
        for path in site.rglob("*.html")
        if "_static" not in path.parts and "_sources" not in path.parts
    )
    server = serve(site)
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory(prefix="fcn-chromium-") as profile_dir:
        driver = start_browser(profile_dir)
        try:
            return [check_page(driver, base_url, page, screenshots) for page in pages]
        finally:
            driver.quit()
            server.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "site", type=Path, nargs="?", default=Path("_build/html"), help="built site (default _build/html)"
    )
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for one screenshot per chapter")
    args = parser.parse_args(argv)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download a driver
    reports = check_site(args.site, args.screenshots)
    failed = 0
    for report in reports:
        status = "ok  " if not report.problems else "FAIL"
        print(f"{status} {report.path}: {report.images} image(s), {report.equations} equation(s)")
        for problem in report.problems:
            print(f"     {problem}")
        failed += bool(report.problems)
    print(f"{len(reports) - failed}/{len(reports)} pages without problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
