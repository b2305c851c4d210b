"""The HTML drift report: self-contained, escaped, and rendered cleanly by a real browser.

The browser tests drive Debian's headless Chromium (installed by tests/system_deps.sh) through
the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON messages ending in NUL on
file descriptors 3 and 4), with the standard library only. That gives what a screenshot alone
cannot: every console message, uncaught exception, browser log entry, network request and
JavaScript dialog of the page, as structured events rather than log lines to parse. One browser
serves every page of the module, so the suite pays Chromium's start-up once.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgewise.profiles.html import render_html

XSS_CATEGORY = "<script>alert(1)</script>"
XSS_IMAGE = "<img src=x onerror=alert(2)>"
XSS_NAME = '"><svg onload=alert(3)>'
LONG_NAME = "customer_lifetime_value_estimate_" * 9
CALL_TIMEOUT = 15.0  # seconds for one DevTools call, a page load included


# -- reports ---------------------------------------------------------------------------------


def numeric_column(
    name: str, reference: np.ndarray, current: np.ndarray, score: float, threshold: float = 0.1
) -> dict[str, Any]:
    """A numeric column as `drift` reports it, with histograms computed from the samples."""
    edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins=30)
    ref = np.histogram(reference, edges)[0] / len(reference)
    cur = np.histogram(current, edges)[0] / len(current)

    def summary(values: np.ndarray) -> dict[str, Any]:
        return {
            "count": len(values),
            "nulls": 0,
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
        }

    return {
        "name": name,
        "kind": "numeric",
        "method": "wasserstein_normed",
        "score": score,
        "threshold": threshold,
        "drifted": score >= threshold,
        "metrics": {"wasserstein_normed": score, "ks": score / 2.5, "psi": score / 4, "js": 0.04},
        "distribution": {
            "type": "histogram",
            "edges": edges.tolist(),
            "reference": ref.tolist(),
            "current": cur.tolist(),
        },
        "reference_summary": summary(reference),
        "current_summary": summary(current),
    }


def categorical_column(
    name: str, categories: list[str], ref: list[float], cur: list[float], score: float
) -> dict[str, Any]:
    summary = {"count": 100_000, "nulls": 12, "distinct": len(categories)}
    return {
        "name": name,
        "kind": "categorical",
        "method": "js_distance",
        "score": score,
        "threshold": 0.1,
        "drifted": score >= 0.1,
        "metrics": {"js": score, "linf": score * 0.8, "chi2": 812.0, "cramers_v": 0.02},
        "distribution": {
            "type": "categories",
            "categories": categories,
            "reference": ref,
            "current": cur,
        },
        "reference_summary": summary,
        "current_summary": summary,
    }


def realistic_report() -> dict[str, Any]:
    """A credit-risk batch a month later: incomes and channels moved, the rest did not."""
    rng = np.random.default_rng(7)
    n = 20_000
    columns = [
        numeric_column(
            "income", rng.lognormal(10.4, 0.5, n), rng.lognormal(10.6, 0.55, n), score=0.131
        ),
        numeric_column("age", rng.normal(41, 12, n), rng.normal(41.3, 12, n), score=0.012),
        numeric_column(
            "debt_ratio", rng.beta(2, 5, n), rng.beta(2.6, 4.2, n), score=0.168, threshold=0.1
        ),
        numeric_column("tenure_months", rng.gamma(2, 18, n), rng.gamma(2, 18.2, n), score=0.02),
        categorical_column(
            "channel",
            ["branch", "web", "mobile", "partner", "(other)"],
            [0.42, 0.31, 0.18, 0.07, 0.02],
            [0.28, 0.30, 0.33, 0.07, 0.02],
            score=0.14,
        ),
        categorical_column(
            "region",
            ["north", "south", "east", "west", "(other)"],
            [0.26, 0.24, 0.25, 0.23, 0.02],
            [0.25, 0.25, 0.24, 0.24, 0.02],
            score=0.02,
        ),
        {
            "name": "has_mortgage",
            "kind": "boolean",
            "method": "js_distance",
            "score": 0.01,
            "threshold": 0.1,
            "drifted": False,
            "metrics": {"js": 0.01, "psi": 0.0004},
            "distribution": {
                "type": "categories",
                "categories": ["false", "true"],
                "reference": [0.61, 0.39],
                "current": [0.6, 0.4],
            },
            "reference_summary": {"count": 20_000, "nulls": 0},
            "current_summary": {"count": 20_000, "nulls": 0},
        },
    ]
    drifted = sum(c["drifted"] for c in columns)
    return {
        "format_version": 1,
        "drifted": drifted / len(columns) >= 0.5,
        "drift_share": 0.5,
        "drifted_columns": drifted,
        "columns_compared": len(columns),
        "reference": {"rows": n, "source": "applicants-2024-05.parquet"},
        "current": {"rows": n, "source": "applicants-2024-06.parquet"},
        "columns": columns,
    }


def hostile_report() -> dict[str, Any]:
    """User data that tries to inject markup, and every number that is not a number."""
    nan, inf = float("nan"), float("inf")
    many = [f"merchant-{i:04d}" for i in range(1000)]
    zipf = 1 / np.arange(1, 1001) ** 1.1
    ref = (zipf / zipf.sum()).tolist()
    cur = (np.roll(zipf, 3) / zipf.sum()).tolist()
    columns: list[dict[str, Any]] = [
        categorical_column(
            XSS_NAME, [XSS_CATEGORY, XSS_IMAGE, "plain"], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], 0.4
        ),
        {
            "name": "dropped_upstream",
            "kind": "numeric",
            "method": "missing",
            "score": None,
            "threshold": 0.1,
            "drifted": True,
            "metrics": {"wasserstein_normed": nan, "ks": None, "psi": inf},
            "distribution": None,
            "reference_summary": {"count": 1000, "nulls": 0, "mean": 1.0},
            "current_summary": None,
        },
        {
            "name": LONG_NAME,
            "kind": "numeric",
            "method": "wasserstein_normed",
            "score": nan,
            "threshold": nan,
            "drifted": True,
            "metrics": {"ks": -inf, "psi": nan},
            "distribution": {"type": "histogram", "edges": [], "reference": [], "current": []},
            "reference_summary": {"count": 0, "nulls": 0, "mean": nan},
            "current_summary": {"count": 0, "nulls": 0, "mean": nan},
        },
        {
            "name": "constant",
            "kind": "discrete",
            "method": "wasserstein_normed",
            "score": 0.0,
            "threshold": 0.1,
            "drifted": False,
            "metrics": {},
            "distribution": {
                "type": "histogram",
                "edges": [3.0, 3.0],
                "reference": [1.0],
                "current": [nan],
            },
        },
        {
            "name": "open_ended",
            "kind": "numeric",
            "method": "psi",
            "score": 0.3,
            "threshold": 0.2,
            "drifted": True,
            "metrics": {"psi": 0.3},
            "distribution": {
                "type": "histogram",
                "edges": [-inf, 0.0, 1.0, 2.0, inf],
                "reference": [0.1, 0.4, 0.4, 0.1],
                "current": [0.3, 0.2, 0.2, 0.3],
            },
        },
        categorical_column("merchant", many, ref, cur, score=0.6),
    ]
    return {
        "format_version": 1,
        "drifted": True,
        "drift_share": nan,
        "drifted_columns": None,
        "columns_compared": None,
        "reference": {"rows": None, "source": "</title><script>alert(4)</script>"},
        "current": {"rows": inf, "source": None},
        "columns": columns,
    }


# -- the page as text: no browser needed ----------------------------------------------------


def test_report_loads_nothing_from_the_network() -> None:
    page = render_html(realistic_report()).lower()
    assert "http://" not in page and "https://" not in page
    for loader in ("<script", "<link", "<img", "<iframe", "@import", "url("):
        assert loader not in page, loader


def test_a_url_in_the_data_stays_text() -> None:
    report = realistic_report()
    report["current"]["source"] = "https://example.com/applicants.parquet"
    page = render_html(report)
    assert "https://example.com/applicants.parquet" in page
    assert 'href="#col-' in page
    assert 'href="http' not in page and 'src="' not in page


def test_user_data_is_escaped() -> None:
    page = render_html(hostile_report())
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "onload=alert(3)" in page and "<svg onload" not in page


def test_numbers_that_are_not_numbers_are_dashes() -> None:
    page = render_html(hostile_report())
    assert re.findall(r"\b(?:nan|inf)\b", page, flags=re.IGNORECASE) == []
    assert "None" not in page
    assert "∞" in page and "—" in page


def test_a_thousand_categories_fold_into_one_bar() -> None:
    page = render_html(hostile_report())
    assert "980 more categories" in page
    assert "merchant-0000" in page and "merchant-0019" in page
    assert "merchant-0500" not in page


# -- the page in a real browser -------------------------------------------------------------


class DevToolsError(RuntimeError):
    pass


class Chromium:
    """Headless Chromium spoken to over `--remote-debugging-pipe`, standard library only."""

    def __init__(self, executable: str, workdir: Path) -> None:
        commands_read, self._commands = _pipe_above(10)
        self._replies, replies_write = _pipe_above(10)
        self.log = workdir / "chromium.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    "bash",  # dash's redirections stop at fd 9
                    "-c",
                    f'exec "$0" "$@" 3<&{commands_read} 4>&{replies_write}',
                    executable,
                    "--headless",
                    "--remote-debugging-pipe",
                    "--no-sandbox",  # root (CI) cannot use the sandbox
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                    "--mute-audio",
                    f"--user-data-dir={workdir / 'profile'}",
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(commands_read, replies_write),
            )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply, keeping the events that arrive meanwhile."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        reply = self._receive(lambda m: m.get("id") == self._next_id, method)
        if "error" in reply:
            raise DevToolsError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    def wait_for(self, events: set[str], session: str, since: int) -> int:
        """Where in `self.events` the first of `events` for `session` after `since` is."""

        def wanted(message: dict[str, Any]) -> bool:
            return message.get("method") in events and message.get("sessionId") == session

        for index in range(since, len(self.events)):
            if wanted(self.events[index]):
                return index
        self._receive(wanted, " or ".join(sorted(events)))
        return len(self.events) - 1

    def _receive(self, wanted: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + CALL_TIMEOUT
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if wanted(message):
                    return dict(message)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._replies], [], [], remaining)[0]:
                raise DevToolsError(
                    f"no answer to {what} within {CALL_TIMEOUT} s{self._log_tail()}"
                )
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise DevToolsError(f"Chromium exited while waiting for {what}{self._log_tail()}")
            self._buffer += chunk

    def _log_tail(self) -> str:
        lines = [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if "dbus" not in line  # there is no D-Bus in a container or on CI: noise
        ][-15:]
        return f"; the end of {self.log}:\n" + "\n".join(lines)

    def close(self) -> None:
        with contextlib.suppress(DevToolsError, OSError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._commands)
        os.close(self._replies)


def _pipe_above(lowest: int) -> tuple[int, int]:
    """A pipe whose ends are numbered `lowest` or more, so `3<&N 4>&M` cannot clobber them."""
    low_read, low_write = os.pipe()
    ends = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest) for fd in (low_read, low_write))
    os.close(low_read)
    os.close(low_write)
    return ends[0], ends[1]


@dataclass
class LoadedPage:
    """What one page did in the browser: its problems, requests, DOM facts and screenshot."""

    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    dom: dict[str, Any] = field(default_factory=dict)
    screenshot: Path | None = None


# Facts about the page, computed in the page.
DOM_FACTS = """(() => {
  const figures = [...document.querySelectorAll('figure.column-plot')];
  return {
    figures: figures.map(f => {
      const svg = f.querySelector(':scope > svg');
      const box = svg ? svg.getBoundingClientRect() : null;
      return {column: f.dataset.column, drifted: f.dataset.drifted,
              svg: !!svg, width: box ? box.width : 0, height: box ? box.height : 0};
    }),
    tableColumns: [...document.querySelectorAll('table.metrics tbody tr')]
      .map(r => r.dataset.column),
    tableNames: [...document.querySelectorAll('table.metrics tbody td.name')]
      .map(td => td.textContent),
    scripts: document.querySelectorAll('script').length,
    images: document.querySelectorAll('img, iframe, object, embed').length,
    handlers: [...document.querySelectorAll('*')]
      .flatMap(e => [...e.attributes].map(a => a.name))
      .filter(n => n.startsWith('on')),
    text: document.documentElement.textContent,
    title: document.title,
    verdict: document.querySelector('.verdict')?.innerText ?? null,
    pageHeight: document.documentElement.scrollHeight,
  };
})()"""


def problems_in(events: list[dict[str, Any]]) -> list[str]:
    """Console errors and asserts, uncaught exceptions and browser log errors, as text."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            found.append(f"console.{params['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            found.append(f"uncaught: {details.get('exception', {}).get('description', details)}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(f"log ({params['entry']['source']}): {params['entry']['text']}")
    return found


class PageLoader:
    """Opens local files in one tab of a shared browser and records what each one did."""

    def __init__(self, browser: Chromium) -> None:
        self.browser = browser
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = browser.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.call(method, self.session, **params)

    def load(self, path: Path, screenshot: Path | None = None) -> LoadedPage:
        first_event = len(self.browser.events)
        self.call("Page.navigate", url=path.as_uri())
        # An injected alert() would hold the page (and its load event) until it is dismissed.
        seen = first_event
        while True:
            seen = self.browser.wait_for(
                {"Page.loadEventFired", "Page.javascriptDialogOpening"}, self.session, seen
            )
            if self.browser.events[seen]["method"] == "Page.loadEventFired":
                break
            self.call("Page.handleJavaScriptDialog", accept=False)
            seen += 1
        page = LoadedPage()
        page.dom = self.call("Runtime.evaluate", expression=DOM_FACTS, returnByValue=True)[
            "result"
        ]["value"]
        if screenshot is not None:
            shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            page.screenshot = screenshot
        events = [
            e for e in self.browser.events[first_event:] if e.get("sessionId") == self.session
        ]
        page.problems = problems_in(events)
        page.requests = [
            e["params"]["request"]["url"]
            for e in events
            if e["method"] == "Network.requestWillBeSent"
        ]
        page.dialogs = [
            e["params"]["message"] for e in events if e["method"] == "Page.javascriptDialogOpening"
        ]
        return page


def find_chromium() -> str:
    """The browser, or a failed test: the suite promises a real browser, so no skip."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "Chromium not found: the HTML report tests need a real browser. Install it with "
        "`make system-deps` (tests/system_deps.sh, Debian's `chromium` package).",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageLoader]:
    chromium = Chromium(find_chromium(), tmp_path_factory.mktemp("chromium"))
    try:
        yield PageLoader(chromium)
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def pages(browser: PageLoader, tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadedPage]:
    """Each report rendered to a file and loaded once; the tests below look at the results."""
    folder = tmp_path_factory.mktemp("reports")
    loaded = {}
    for name, report in (("realistic", realistic_report()), ("hostile", hostile_report())):
        path = folder / f"{name}.html"
        path.write_text(render_html(report), encoding="utf-8")
        loaded[name] = browser.load(path, screenshot=folder / f"{name}.png")
    return loaded


def drifted_names(report: dict[str, Any]) -> set[str]:
    return {c["name"] for c in report["columns"] if c["drifted"] is True}


def test_harness_sees_console_errors_and_requests(browser: PageLoader, tmp_path: Path) -> None:
    """A page with errors must fail the checks below: this proves they can fail."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><title>broken</title><img src='missing.png'>"
        "<script>console.error('canary'); undefinedFunction();</script>"
    )
    loaded = browser.load(page)
    assert any("canary" in p for p in loaded.problems), loaded.problems
    assert any("undefinedFunction" in p for p in loaded.problems), loaded.problems
    assert any(url.endswith("missing.png") for url in loaded.requests), loaded.requests


@pytest.mark.parametrize("name", ["realistic", "hostile"])
def test_page_renders_without_errors_or_requests(pages: dict[str, LoadedPage], name: str) -> None:
    page = pages[name]
    assert page.problems == []
    assert page.dialogs == []
    assert [url for url in page.requests if not url.startswith("file:")] == []


@pytest.mark.parametrize(
    ("name", "report"), [("realistic", realistic_report()), ("hostile", hostile_report())]
)
def test_every_drifted_column_has_a_visible_plot(
    pages: dict[str, LoadedPage], name: str, report: dict[str, Any]
) -> None:
    dom = pages[name].dom
    plotted = [f for f in dom["figures"] if f["drifted"] == "true"]
    assert sorted(f["column"] for f in plotted) == sorted(drifted_names(report))
    for figure in plotted:
        assert figure["svg"] and figure["width"] > 300 and figure["height"] > 60, figure
    every = sorted(c["name"] for c in report["columns"])
    assert sorted(f["column"] for f in dom["figures"]) == every
    assert sorted(dom["tableColumns"]) == every
    assert sorted(dom["tableNames"]) == every


def test_realistic_page_reads_right(pages: dict[str, LoadedPage]) -> None:
    dom = pages["realistic"].dom
    assert dom["title"] == "Drift report: applicants-2024-05.parquet → applicants-2024-06.parquet"
    assert dom["verdict"].startswith("No dataset drift. 3 of 7 columns drifted (43%).")
    drifted_first = dom["tableColumns"][:3]
    assert set(drifted_first) == {"income", "debt_ratio", "channel"}


def test_injected_markup_stays_text(pages: dict[str, LoadedPage]) -> None:
    dom = pages["hostile"].dom
    assert dom["scripts"] == 0 and dom["images"] == 0 and dom["handlers"] == []
    assert pages["hostile"].dialogs == []
    for text in (XSS_CATEGORY, XSS_IMAGE, XSS_NAME, "</title><script>alert(4)</script>"):
        assert text in dom["text"]
    assert XSS_NAME in {f["column"] for f in dom["figures"]}


@pytest.mark.parametrize("name", ["realistic", "hostile"])
def test_screenshot_shows_a_page(pages: dict[str, LoadedPage], name: str) -> None:
    shot = pages[name].screenshot
    assert shot is not None
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1280 and height >= pages[name].dom["pageHeight"] > 900
    # A blank page compresses to a few KB whatever its size; text and plots do not.
    assert len(data) > 60_000, len(data)
