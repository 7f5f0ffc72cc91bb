"""A real browser for the end-to-end tests: Debian's chromium, driven by selenium.

Tests that need it skip with the reason when chromium, its driver or selenium is missing
(`.ci/run` installs them). Screenshots go to the tests' scratch directory, and also to
CANADUCK_SCREENSHOTS when it names a directory (how docs/ gets current ones).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scripts.devkit.processes import scratch_dir

#: What Chromium needs to run headless here, as root, with nothing phoning home.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")

_SHOTS: Path | None = None


def _binaries() -> tuple[str | None, str | None]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    return browser, shutil.which("chromedriver")


def missing() -> str:
    """Why no browser test can run here ('' when they can)."""
    browser, driver = _binaries()
    if browser is None or driver is None:
        return "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (a dev dependency: pip install -e '.[dev]')"
    return ""


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A headless Chromium with a fresh profile, quit (and its profile removed) at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = _binaries()
    assert browser and driver_path, missing()
    profile = tempfile.mkdtemp(prefix="chromium-", dir=scratch_dir("browser"))
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, name: str) -> Path:
    """Save a PNG of the page as a test artefact; return its path."""
    global _SHOTS
    if _SHOTS is None:
        _SHOTS = scratch_dir("screenshots")
    path = _SHOTS / name
    driver.save_screenshot(str(path))
    wanted = os.environ.get("CANADUCK_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(wanted) / name)
    return path


def console_errors(driver: Any) -> list[str]:
    """The page's console errors since the last call (CSP violations, exceptions...)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
