r"""The real book, as a reader sees it: every page opened in headless Chromium, offline.

Builds book/html from the repository's book.toml and committed notebooks, then checks on each
page (front page and every chapter) that MathJax typeset every formula (no raw `$$`, `\(`, `\[`
left outside code, no MathJax error), that every image loaded, and that no request left the
machine. One screenshot per page goes to test-artifacts/ (git-ignored) for a person to look at.

Needs Debian's `chromium` (apt-get install -y chromium) and the playwright Python package
(it drives the system Chromium; no browser download). Without Chromium the tests are skipped,
except under CI (CI=true), where they fail.
"""

import os
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from dpo_teach.book import build_book

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-quic"]
CHAPTERS = [Path(c["notebook"]).stem for c in
            tomllib.loads((REPO / "book.toml").read_text())["preprocessor"]["dpo-teach"]["chapters"]]
PAGES = ["index", *CHAPTERS]
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$\\")  # what untypeset math leaves behind
# Text of <main> without code and typeset math: where raw TeX must not appear.
PROSE_JS = """() => { const m = document.querySelector('main').cloneNode(true);
  m.querySelectorAll('pre, code, mjx-container, script, style').forEach(e => e.remove());
  return m.textContent; }"""


def _no_browser(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser checks: apt-get install -y chromium")
    pytest.skip(f"{reason}: apt-get install -y chromium (and pip install playwright)")


@pytest.fixture(scope="module")
def site() -> Path:
    return build_book(REPO, quiet=True).parent


@pytest.fixture(scope="module")
def browser():
    exe = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if exe is None:
        _no_browser("Chromium not found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("the playwright package is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.parametrize("page_name", PAGES)
def test_page_renders_offline(site, browser, page_name):
    path = site / f"{page_name}.html"
    source = path.read_text()
    source_prose = re.sub(r"<(pre|code|script)\b.*?</\1>", "", source, flags=re.DOTALL | re.IGNORECASE)
    has_math = bool(RAW_TEX.search(source_prose))

    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    requests, failed = [], []
    context.route(re.compile(r"^(https?|wss?|ftp)://"), lambda route: route.abort())  # nothing leaves
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))
    try:
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20_000)
        page.evaluate("() => MathJax.startup.promise")  # resolves when the first typeset is done
        page.evaluate("() => Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{page_name}.png")

        remote = [u for u in requests if not u.startswith(("file:", "data:", "about:", "blob:"))]
        assert not remote, f"{page_name}: requests left the machine: {remote}"
        assert not failed, f"{page_name}: requests failed: {failed}"
        broken = page.evaluate("() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                               ".map(i => i.getAttribute('src'))")
        assert not broken, f"{page_name}: images did not load: {broken}"
        typeset = page.evaluate("() => document.querySelectorAll('main mjx-container').length")
        errors = page.evaluate("() => [...document.querySelectorAll('mjx-merror, [data-mjx-error]')]"
                               ".map(e => e.getAttribute('data-mjx-error') || e.textContent)")
        leftover = RAW_TEX.findall(page.evaluate(PROSE_JS))
        assert not errors, f"{page_name}: MathJax could not typeset: {errors}"
        assert not leftover, f"{page_name}: untypeset TeX in the page text: {leftover[:10]}"
        if has_math:
            assert typeset > 0, f"{page_name}: page has formulas but MathJax typeset none"
    finally:
        context.close()


def test_book_references_nothing_remote(site):
    """No script, stylesheet, font or image of any page comes from the network."""
    remote = {}
    for page in site.rglob("*.html"):
        refs = re.findall(r'<(?:script|link|img|source|iframe)\b[^>]*?\b(?:src|href)\s*=\s*"([^"]+)"', page.read_text())
        bad = [r for r in refs if re.match(r"(https?:)?//", r)]
        if bad:
            remote[page.name] = bad
    for css in site.rglob("*.css"):
        bad = re.findall(r"url\(\s*['\"]?((?:https?:)?//[^'\")]+)", css.read_text())
        if bad:
            remote[css.name] = bad
    assert not remote, f"remote resources referenced: {remote}"
