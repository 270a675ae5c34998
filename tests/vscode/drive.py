"""Drive a real VS Code (code-server, in headless Chromium through Playwright) as a developer
does: open the app's folder, press F5, answer VS Code's dialog, run a task from the command
palette. Test-only; runs in the test tools' own virtualenv (tests/vscode/tools.py), not the
kit's, and prints what it saw as one JSON object.

    python drive.py URL FOLDER STEPS_JSON

STEPS_JSON is a list of steps: {"f5": {"wait_file": PATH, "timeout": S}} presses F5 and waits
for PATH (the debuggee writes it) or for a VS Code dialog, whichever comes first, and answers
"Abort" to a dialog; {"task": LABEL} runs a task through "Tasks: Run Task"; {"sleep": S};
{"screenshot": PATH}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

# As the machine's notes say: without these, Chromium's background connections are refused by
# the closed network, many at a time.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def workbench(page, url: str, folder: str) -> None:
    page.goto(f"{url}/?folder={folder}")
    page.wait_for_selector(".monaco-workbench", timeout=120_000)
    # The status bar shows the folder's remote host once the extension host is up.
    page.wait_for_selector(".statusbar", timeout=120_000)
    time.sleep(3)  # the extension host activates the debuggers and reads tasks.json


def command(page, name: str) -> None:
    """Run a command from the command palette, by its title."""
    page.keyboard.press("F1")
    box = page.wait_for_selector(".quick-input-widget input", timeout=30_000)
    box.fill(">" + name)
    page.wait_for_selector(
        f'.quick-input-list .monaco-list-row[aria-label*="{name}"]', timeout=30_000
    )
    page.keyboard.press("Enter")


def pick(page, label: str) -> None:
    box = page.wait_for_selector(".quick-input-widget input", timeout=30_000)
    box.fill(label)
    page.wait_for_selector(
        f'.quick-input-list .monaco-list-row[aria-label*="{label}"]', timeout=30_000
    )
    page.keyboard.press("Enter")


def dialog_text(page) -> str:
    found = page.query_selector(".monaco-dialog-box")
    return found.inner_text() if found else ""


def f5(page, wait_file: str, timeout: float) -> dict:
    started = time.monotonic()
    page.click(".monaco-workbench .part.editor", position={"x": 50, "y": 50})
    page.keyboard.press("F5")
    deadline = started + timeout
    while time.monotonic() < deadline:
        if Path(wait_file).exists():
            time.sleep(0.5)
            return {"launched": True, "seconds": time.monotonic() - started, "dialog": ""}
        text = dialog_text(page)
        if text:
            time.sleep(1)  # the whole message
            text = dialog_text(page)
            page.click('.monaco-dialog-box a.monaco-button:has-text("Abort")')
            return {"launched": False, "seconds": time.monotonic() - started, "dialog": text}
        time.sleep(0.2)
    return {"launched": False, "seconds": timeout, "dialog": "", "timed_out": True}


def main(url: str, folder: str, steps: list[dict]) -> dict:
    seen: list[dict] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        workbench(page, url, folder)
        for step in steps:
            if "f5" in step:
                seen.append({"f5": f5(page, step["f5"]["wait_file"], step["f5"]["timeout"])})
            elif "task" in step:
                command(page, "Tasks: Run Task")
                pick(page, step["task"])
                seen.append({"task": step["task"]})
            elif "sleep" in step:
                time.sleep(step["sleep"])
            elif "screenshot" in step:
                page.screenshot(path=step["screenshot"])
        browser.close()
    return {"steps": seen}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))))
