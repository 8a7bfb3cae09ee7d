"""Headless Chromium helpers: dump the rendered DOM of a report, or screenshot it.

A test tool, not part of mepr: tests/test_report.py reads the prediction pages back through
it, and it refreshes the README screenshot (the browser comes from
workflow/scripts/install-test-deps.sh)::

    python tests/browser.py screenshot OUT/video/report.html docs/report.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MEASURE = """
<script>
(function () {
  const d = document.documentElement;
  d.dataset.scrollWidth = d.scrollWidth;
  d.dataset.scrollHeight = d.scrollHeight;
  d.dataset.innerWidth = window.innerWidth;
  for (const el of document.querySelectorAll("svg rect.bar, svg rect.cell, svg path, img")) {
    const r = el.getBoundingClientRect();
    el.setAttribute("data-rendered-width", r.width.toFixed(2));
    el.setAttribute("data-rendered-height", r.height.toFixed(2));
    if (el.tagName === "IMG") el.setAttribute("data-natural-width", el.naturalWidth);
  }
})();
</script>
"""


def find_chromium() -> str | None:
    """$MEPR_CHROMIUM, else the first Chromium/Chrome on PATH."""
    wanted = os.environ.get("MEPR_CHROMIUM")
    if wanted:
        return shutil.which(wanted)
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _run(args: list[str], url: str, timeout: float) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("no chromium on PATH (workflow/scripts/install-test-deps.sh)")
    with tempfile.TemporaryDirectory(prefix="mepr-chromium-") as profile:
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *args, url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc


def dump_dom(
    html: str | Path, *, measure: bool = True, width: int = 1280, timeout: float = 90
) -> str:
    """The DOM after load. With `measure`, a copy of the page gets a script that records
    layout (bar widths, image sizes, page width) as data-* attributes first."""
    page = Path(html).resolve()
    if measure:
        copy = page.with_name(f".measure-{page.name}")
        text = page.read_text(encoding="utf-8")
        copy.write_text(text.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
        page = copy
    try:
        proc = _run([f"--window-size={width},900", "--virtual-time-budget=3000", "--dump-dom"],
                    page.as_uri(), timeout)  # fmt: skip
    finally:
        if measure:
            page.unlink(missing_ok=True)
    return proc.stdout


def page_height(html: str | Path, width: int = 1280) -> int:
    import re

    dom = dump_dom(html, width=width)
    m = re.search(r'data-scroll-height="(\d+)"', dom)
    return int(m.group(1)) if m else 2000


def screenshot(
    html: str | Path,
    png: str | Path,
    *,
    width: int = 1280,
    height: int | None = None,
    timeout: float = 90,
) -> Path:
    """A PNG of the page at `width`; the whole page when `height` is None."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    h = height or page_height(html, width)
    _run([f"--window-size={width},{h}", "--virtual-time-budget=3000", f"--screenshot={png}"],
         Path(html).resolve().as_uri(), timeout)  # fmt: skip
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return png


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python tests/browser.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("screenshot")
    s.add_argument("html")
    s.add_argument("png")
    s.add_argument("--width", type=int, default=1280)
    s.add_argument("--height", type=int, default=None, help="default: the whole page")
    d = sub.add_parser("dom")
    d.add_argument("html")
    a = p.parse_args(argv)
    if a.cmd == "screenshot":
        print(screenshot(a.html, a.png, width=a.width, height=a.height))
    else:
        print(dump_dom(a.html))


if __name__ == "__main__":  # pragma: no cover
    main()
