"""The system's Chromium, as the browser tests and the README's screenshots launch it."""

from __future__ import annotations

import os
import shutil

# Headless, as root in a container, and with nothing that would reach the internet.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING = "no Chromium found: install the chromium package, or set CHROMIUM to a Chrome or Chromium binary"


def find() -> str | None:
    """``CHROMIUM`` when set, else the first Chromium or Chrome on the PATH."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        found = candidate and shutil.which(candidate)
        if found:
            return found
    return None
