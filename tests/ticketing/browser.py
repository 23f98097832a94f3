"""What the browser tests share: headless Chromium, one Daphne for the whole test session, and the contrast
measure of WCAG.

Daphne runs in a thread of this process rather than as `ChannelsLiveServerTestCase`'s subprocess: the default
test database is SQLite in memory, which another process cannot open, and with the in-memory channel layer only
a service run inside the server's process reaches its websockets. Services a test performs "as the dispatcher"
therefore run on the server's event loop (`LiveServer.call`), exactly as a request would.

Importing daphne.server installs Twisted's asyncio reactor, which runs once per process: hence one server for
the session, registered in tests/conftest.py so every browser test module gets the same one.

Chromium is required: without it the browser tests fail, naming the packages, unless HOTLINE_SKIP_BROWSER=1.
"""

import asyncio
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Generous: the machine running the suite may be busy; every wait ends as soon as its condition holds.
WAIT_SECONDS = 30


def require_browser() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        pytest.fail(
            f"headless Chromium is needed for the browser tests, but {', '.join(missing)} is missing: "
            "install the Debian packages `chromium` and `chromium-driver` (`make test` does, through "
            "SYSTEM_PACKAGES), or set HOTLINE_SKIP_BROWSER=1 to leave these tests out",
            pytrace=False,
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail("selenium is not installed: pip install -r requirements-dev.txt", pytrace=False)


def chrome(*arguments: str) -> Any:
    """A headless Chromium driven through chromedriver, with `arguments` added."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", *arguments):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


# --- the server --------------------------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    loop: asyncio.AbstractEventLoop

    def call(self, function: Callable[..., Any], **kwargs: Any) -> Any:
        """Run `function` (a service) on the server's event loop, as a request would: its broadcasts reach the
        websockets this server holds."""

        def run() -> Any:
            try:
                return function(**kwargs)
            finally:
                # No connection of the server's threads may outlive the test database.
                connections.close_all()

        future = asyncio.run_coroutine_threadsafe(sync_to_async(run, thread_sensitive=True)(), self.loop)
        return future.result(timeout=WAIT_SECONDS)


@pytest.fixture(scope="session")
def live_server_daphne() -> Iterator[LiveServer]:
    require_browser()
    from channels.routing import ProtocolTypeRouter
    from daphne.server import Server
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from twisted.internet import reactor

    from hotline.asgi import django_asgi_app, websocket_application

    application = ProtocolTypeRouter(
        {"http": ASGIStaticFilesHandler(django_asgi_app), "websocket": websocket_application}
    )
    listening = threading.Event()
    server = Server(
        application=application,
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        signal_handlers=False,
        verbosity=0,
    )
    original = server.listen_success

    def listen_success(port: Any) -> None:
        original(port)
        listening.set()

    server.listen_success = listen_success  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, name="daphne-live", daemon=True)
    thread.start()
    assert listening.wait(WAIT_SECONDS), "Daphne did not start listening"
    host, port = server.listening_addresses[0]
    yield LiveServer(url=f"http://{host}:{port}", loop=reactor._asyncioEventloop)  # type: ignore[attr-defined]
    reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined]
    thread.join(WAIT_SECONDS)


# --- contrast (WCAG 2.1) -----------------------------------------------------------------------------------


def relative_luminance(rgb: tuple[float, float, float]) -> float:
    def channel(value: float) -> float:
        value /= 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: tuple[float, float, float], background: tuple[float, float, float]) -> float:
    lighter, darker = sorted((relative_luminance(foreground), relative_luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def rgb(css: str) -> tuple[float, float, float]:
    values = [float(v) for v in re.findall(r"[\d.]+", css)]
    assert len(values) in (3, 4) and (len(values) == 3 or values[3] == 1), f"not an opaque colour: {css}"
    return values[0], values[1], values[2]


def wait_for(driver: Any, condition: Callable[[Any], Any], message: str) -> Any:
    """Wait until `condition(driver)` is truthy. Pages redraw what live events change: an element read while it
    is replaced is read again rather than failing the test."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException])
    return wait.until(condition, message)
