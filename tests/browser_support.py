"""Shared pieces of the browser suites: a live ASGI server, Chromium, screenshots.

The server is a real Daphne process (HTTP and WebSockets) on the test database,
started per test with the environment that test needs. Chromium is Debian's,
driven by Playwright (``playwright install`` is never needed). Screenshots go to
``test-artifacts/browser/`` (``make test`` prints the folder).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import time as clock_time
from pathlib import Path

import pytest

from clms_updates import progress
from conftest import database_url_for_subprocess
from updates.models import MaintenanceWindow, UpdateRun

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

__all__ = [
    "LiveServer",
    "assert_fits_the_screen",
    "browser_fixture",
    "every_day_window",
    "expect",
    "in_thread",
    "open_page",
    "publish",
    "serve_fixture",
    "shots_fixture",
]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A Daphne process serving the project (HTTP, WebSockets, static files)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # `runserver` is Daphne's (the `daphne` app overrides it) and serves /static/.
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runserver",
                "--noreload",
                "--skip-checks",
                f"127.0.0.1:{self.port}",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    "the ASGI server exited at start:\n" + self.log.read_text()[-3000:]
                )
            try:
                login_url = self.url + "/accounts/login/"  # always http://127.0.0.1
                with urllib.request.urlopen(login_url, timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        pytest.fail(
            "the ASGI server did not answer in 60 s:\n" + self.log.read_text()[-3000:]
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(name="serve")
def serve_fixture(
    redis_url, postgres_url, tmp_path
) -> Iterator[Callable[..., LiveServer]]:  # type: ignore[no-untyped-def]
    """Start a live server on the test database; extra settings as env variables."""
    servers: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        server = LiveServer(
            {
                **os.environ,
                "DATABASE_URL": database_url_for_subprocess(),
                "REDIS_URL": redis_url,
                "DEBUG": "true",
                **env,
            },
            tmp_path / f"server-{len(servers)}.log",
        )
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(name="browser", scope="module")
def browser_fixture() -> Iterator[object]:
    """Debian's Chromium, driven by Playwright (never `playwright install` here)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    # Playwright's sync API keeps an event loop running in this thread; the ORM
    # calls of the test (and its database teardown) are still plain sync code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with playwright_api.sync_playwright() as p:
            launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(name="shots")
def shots_fixture(artifacts_dir: Path) -> Callable[..., Path]:
    folder = artifacts_dir / "browser"
    folder.mkdir(parents=True, exist_ok=True)

    def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shot


def open_page(browser, server: LiveServer, user, *, width: int = 1280):  # type: ignore[no-untyped-def]
    """A new browser tab, logged in as ``user`` through the login form."""
    # The test process hashes with MD5 for speed; the server knows only the
    # production hashers, so store the password the way it can check it.
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    hasher = PBKDF2PasswordHasher()
    type(user).objects.filter(pk=user.pk).update(
        password=hasher.encode("pw-" + user.username, hasher.salt())
    )
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        locale="en-GB",
        timezone_id="Europe/London",
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(server.url + "/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("pw-" + user.username)
    page.get_by_role("button", name="Log in").click()
    try:
        page.wait_for_url(server.url + "/updates/")
    except playwright_api.TimeoutError:
        pytest.fail(
            f"logging in did not lead to the update manager; at {page.url}:\n"
            + page.inner_text("body")[:2000]
            + "\nserver log:\n"
            + server.log.read_text()[-3000:]
        )
    return page


def in_thread(
    function: Callable[..., object], *args: object, **kwargs: object
) -> object:
    """Run ``function`` in a worker thread, as the pipeline's worker would.

    Playwright keeps an event loop running in the test's thread, where
    ``async_to_sync`` (used by the progress publisher) refuses to run.
    """
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def call() -> object:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result(timeout=30)


def publish(run: UpdateRun, message: str, **fields: object) -> None:
    in_thread(progress.publish, run, message, **fields)


# Visible elements of the page's main part whose right edge is past the screen
# (content a phone user cannot reach, even inside a table that scrolls itself).
OFF_SCREEN_JS = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  document.querySelectorAll("main *, header *, .banner *").forEach((el) => {
    if (el.closest("thead, .sr-only, [hidden], details:not([open]) > :not(summary)")) return;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0 && r.right > width + 1) {
      const id = el.id ? "#" + el.id : "";
      const text = (el.textContent || "").trim().slice(0, 40);
      out.push(`${el.tagName.toLowerCase()}${id} ends at ${Math.round(r.right)}px: ${text}`);
    }
  });
  return {scroll: document.documentElement.scrollWidth, width, off: out.slice(0, 8)};
}"""


def assert_fits_the_screen(page, where: str) -> None:  # type: ignore[no-untyped-def]
    """Nothing on ``page`` is wider than its viewport, nor scrolls out of it."""
    found = page.evaluate(OFF_SCREEN_JS)
    assert found["scroll"] <= found["width"], (
        f"{where} scrolls sideways ({found['scroll']}px on {found['width']}px): "
        f"{found['off']}"
    )
    assert not found["off"], f"{where} has content off the screen: {found['off']}"


def every_day_window() -> None:
    MaintenanceWindow.objects.create(
        weekdays=list(range(7)), start=clock_time(0, 0), end=clock_time(23, 59)
    )
