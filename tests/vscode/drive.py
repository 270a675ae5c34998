"""Drive a real VS Code (code-server, in headless Chromium through Playwright) as a developer
does: open the app's folder, press F5, answer VS Code's dialog, run a task from the command
palette. Test-only; runs in the test tools' own virtualenv (tests/vscode/tools.py), not the
kit's, and prints what it saw as one JSON object.

    python drive.py URL FOLDER STEPS_JSON

STEPS_JSON is a list of steps: {"f5": {"wait_file": PATH, "timeout": S}} presses F5 and waits
for PATH (the debuggee writes it) or for a VS Code dialog, whichever comes first, and answers
"Abort" to a dialog (an F5 that VS Code left alone is pressed again, and counted); {"task":
LABEL} runs a task through "Tasks: Run Task"; {"sleep": S}; {"screenshot": PATH}; {"read":
PATH} records a file's text; {"wait_text": [PATH, TEXT, S]} waits until the file holds TEXT;
{"hold_port": N} listens on 127.0.0.1:N from then on (another program holding the port).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout
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
    """The folder open, and VS Code ready to start debugging: the Run and Debug view lists the
    folder's launch configurations (an F5 pressed before that is lost on a busy machine)."""
    page.goto(f"{url}/?folder={folder}")
    page.wait_for_selector(".monaco-workbench .part.editor", timeout=180_000)
    page.keyboard.press("Control+Shift+D")
    page.wait_for_function(
        """() => {
            const box = document.querySelector('.start-debug-action-item select');
            return box && [...box.options].some((o) => o.text && !o.text.startsWith('No '));
        }""",
        timeout=180_000,
    )
    time.sleep(2)  # the extension host's debuggers registered


def command(page, name: str) -> None:
    """Run a command from the command palette, by its exact title."""
    page.keyboard.press("F1")
    pick(page, name, prefix=">")


def pick(page, label: str, prefix: str = "") -> None:
    """Choose the entry labelled LABEL, exactly (the first fuzzy match can be another one:
    "Tasks: Restart Running Task" for "Tasks: Run Task")."""
    box = page.wait_for_selector(".quick-input-widget input", timeout=30_000)
    box.fill(prefix + label)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for row in page.query_selector_all(".quick-input-list .monaco-list-row"):
            name = row.query_selector(".label-name")
            if name and name.inner_text().strip() == label:
                row.click()
                return
        time.sleep(0.3)
    raise AssertionError(f"no entry {label!r} in the quick pick")


def dialog_text(page) -> str:
    found = page.query_selector(".monaco-dialog-box")
    return found.inner_text() if found else ""


# VS Code's keybinding service prevents a key's default once the key ran a command; this listener,
# added after it on the same window, records whether each F5 did.
WATCH_F5 = """() => {
    window.devkitF5 = [];
    window.addEventListener('keydown', (e) => {
        if (e.key === 'F5') setTimeout(() => window.devkitF5.push(e.defaultPrevented), 0);
    });
}"""


# The Run and Debug view is the sidebar's visible view (debugViewlet.ts: `debug-viewlet`).
DEBUG_VIEW_SHOWN = """() => {
    const view = document.querySelector('.part.sidebar .debug-viewlet');
    return !!view && view.checkVisibility();
}"""


def press_f5(page, within: float = 120) -> int:
    """Press F5 until VS Code takes it, and return how many presses that took. VS Code 1.100.3
    binds F5 to workbench.action.debug.start only `when: debuggersAvailable && debugState ==
    'inactive'` (src/vs/workbench/contrib/debug/browser/debugCommands.ts, read from the
    workbench's source map): before its debuggers are registered, or while an earlier start is
    still initializing, F5 does nothing (nothing of the kit runs either). And before the
    debuggers are registered F5 runs `debug.openView` instead (`when: !debuggersAvailable`, the
    same file): VS Code takes the key and only opens the Run and Debug view (the CI of 207dc7d: the
    first F5 opened it, and nothing started for 480 s). Such a press is pressed again once the
    view shows its start button (debugActionViewItems.ts: `start-debug-action-item`)."""
    deadline = time.monotonic() + within
    presses = 0
    while True:
        debug_view_before = page.evaluate(DEBUG_VIEW_SHOWN)
        page.click(".monaco-workbench .part.editor", position={"x": 50, "y": 50})
        page.keyboard.press("F5")
        presses += 1
        page.wait_for_function(f"() => window.devkitF5.length >= {presses}", timeout=30_000)
        taken = page.evaluate("() => window.devkitF5.at(-1)")
        if time.monotonic() > deadline:
            return presses
        if taken:
            # The command runs after the key's default is prevented, and a busy machine draws
            # the view late: the CI of cd3f373 looked 0.5 s after the press, saw no view, and
            # nothing started for 480 s (no onDebugResolve in the extension host's log until the
            # next step's F5). A start never opens the view, so waiting for it costs a start
            # nothing (its result file stays).
            if debug_view_before:
                return presses
            try:
                page.wait_for_function(DEBUG_VIEW_SHOWN, timeout=10_000)
            except PlaywrightTimeout:
                return presses
            # debug.openView: wait for the debuggers, then press again.
            left = max(1.0, deadline - time.monotonic())
            with contextlib.suppress(PlaywrightTimeout):
                page.wait_for_selector(
                    ".part.sidebar .debug-viewlet .start-debug-action-item",
                    timeout=min(60.0, left) * 1000,
                )
            continue
        time.sleep(1)


def f5(page, wait_file: str, timeout: float) -> dict:
    started = time.monotonic()
    presses = press_f5(page)
    deadline = started + timeout
    while time.monotonic() < deadline:
        if Path(wait_file).exists():
            seconds = time.monotonic() - started
            # The debug session ends with the debuggee: F5 during one would be "continue".
            page.wait_for_selector(".debug-toolbar", state="hidden", timeout=60_000)
            return {"launched": True, "seconds": seconds, "dialog": "", "presses": presses}
        text = dialog_text(page)
        if text:
            time.sleep(1)  # the whole message
            text = dialog_text(page)
            page.click('.monaco-dialog-box a.monaco-button:has-text("Abort")')
            seconds = time.monotonic() - started
            return {"launched": False, "seconds": seconds, "dialog": text, "presses": presses}
        time.sleep(0.2)
    # What VS Code showed, for the failure's message: its status bar (a running task, extensions
    # activating) and its notifications.
    shown = {
        name: page.evaluate(f"() => document.querySelector('{selector}')?.innerText ?? ''")
        for name, selector in (
            ("statusbar", ".part.statusbar"),
            ("notifications", ".notifications-toasts"),
        )
    }
    return {
        "launched": False,
        "seconds": timeout,
        "dialog": "",
        "presses": presses,
        "timed_out": True,
        **shown,
    }


def main(url: str, folder: str, steps: list[dict]) -> dict:
    seen: list[dict] = []
    held: list = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        workbench(page, url, folder)
        page.evaluate(WATCH_F5)
        try:
            run_steps(page, steps, seen, held)
        except Exception:
            page.screenshot(path=f"{folder}.failed.png")
            print(json.dumps({"steps": seen}), file=sys.stderr)
            raise
        browser.close()
    return {"steps": seen}


def run_steps(page, steps: list[dict], seen: list[dict], held: list) -> None:
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
        elif "read" in step:
            path = Path(step["read"])
            seen.append({"read": path.read_text() if path.exists() else ""})
        elif "wait_text" in step:
            path, text, timeout = step["wait_text"]
            deadline = time.monotonic() + timeout

            def holds(path=Path(path), text=text):
                return path.exists() and text in path.read_text()

            while not holds() and time.monotonic() < deadline:
                time.sleep(0.5)
            seen.append({"wait_text": holds()})
        elif "hold_port" in step:
            import socket

            holder = socket.socket()
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            holder.bind(("127.0.0.1", step["hold_port"]))
            holder.listen()
            held.append(holder)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))))
