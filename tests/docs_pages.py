"""``make docs-check``: every page of the built site, as headless Chromium renders it.

    python -m tests.docs_pages [SITE_DIR] [--shots DIR | --no-shots] [--width 1280 --width 800]

Serves the site on 127.0.0.1, takes a screenshot of each page at each width (in --shots, to
look at), and loads each page in a checker page that reports, after the page's scripts ran:
images that did not load, each image's scale on screen (a chart drawn wider than the column
is shrunk, and its type with it), and these faults, each of which fails the check:

- a table, or its scrolling wrapper, wider than the column it sits in (a scrollbar, a
  clipped border);
- a code block with a line wider than the block (cut off behind a scrollbar; a comment at
  the end of a command is what readers miss);
- a literal backslash before a ``|`` in a table cell (Markdown's escape kept inside code);
- a chart (a PNG in docs/) without a legend for its colours: a chart records its legend's
  labels in its PNG metadata (``Legend``), as benchmarks/compare.py writes them.

Exits 1 on any of them, or a broken image. Needs Debian's chromium.
"""

from __future__ import annotations

import argparse
import functools
import html
import http.server
import json
import re
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

CHECKER = """<!doctype html><html><body><pre id="out">pending</pre><script>
const pages = PAGES;
const report = {};
function check(index) {
  if (index === pages.length) {
    document.getElementById("out").textContent = JSON.stringify(report);
    return;
  }
  const frame = document.createElement("iframe");
  frame.style.width = "WIDTHpx"; frame.style.height = "900px";
  frame.onload = () => setTimeout(() => {
    const doc = frame.contentDocument;
    const images = [...doc.querySelectorAll("article img")].map(img => ({
      src: img.getAttribute("src"), loaded: img.complete && img.naturalWidth > 0,
      scale: img.naturalWidth ? img.clientWidth / img.naturalWidth : 0}));
    const tables = [...doc.querySelectorAll("article table")].map(table => {
      const box = table.closest(".md-typeset__scrollwrap") || table.parentElement;
      const scrolls = Math.max(box.scrollWidth, table.scrollWidth) - box.clientWidth;
      return {overflow: Math.max(0, scrolls),
              head: table.rows[0] ? table.rows[0].innerText.slice(0, 60) : "",
              escapes: [...table.querySelectorAll("td, th")].map(cell => cell.textContent)
                .filter(text => text.includes("\\\\|")).map(text => text.slice(0, 60))};
    });
    const code = [...doc.querySelectorAll("article pre > code")]
      .filter(block => block.scrollWidth > block.clientWidth + 1)
      .map(block => ({cut: block.scrollWidth - block.clientWidth,
        line: block.textContent.split("\\n").reduce((a, b) => b.length > a.length ? b : a)
          .slice(0, 80)}));
    report[pages[index]] = {images, tables, code};
    frame.remove();
    check(index + 1);
  }, 300);
  frame.src = pages[index];
  document.body.appendChild(frame);
}
check(0);
</script></body></html>"""


def chromium(*args: str) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("docs-check needs Chromium (Debian: apt-get install chromium)")
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            # the theme asks Google for its fonts: fail that at once (CI has no such network)
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def png_legend(path: Path) -> str | None:
    """The ``Legend`` text a PNG carries in its metadata (a tEXt chunk), if any."""
    data = path.read_bytes()
    at = 8  # past the signature
    while at + 8 <= len(data):
        length = struct.unpack(">I", data[at : at + 4])[0]
        kind = data[at + 4 : at + 8]
        if kind == b"tEXt":
            keyword, _, text = data[at + 8 : at + 8 + length].partition(b"\0")
            if keyword == b"Legend":
                return text.decode("latin-1")
        at += 12 + length
    return None


def check_site(site: Path, shots: Path | None, width: int) -> int:
    """Screenshots of every page at ``width`` px, and the faults the checker page finds."""
    pages = sorted(
        "/" + str(page.parent.relative_to(site)).replace(".", "") + "/"
        for page in site.rglob("index.html")
    )
    pages = [re.sub("/+", "/", page) for page in pages]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_address[1]}"
    checker = site / "_docs_check.html"
    checker.write_text(CHECKER.replace("PAGES", json.dumps(pages)).replace("WIDTH", str(width)))
    try:
        for page in pages if shots is not None else []:
            name = page.strip("/").replace("/", "-") or "index"
            chromium(
                f"--window-size={width},2400",
                f"--screenshot={(shots / name).resolve()}-{width}.png",
                root + page,
            )
        dom = chromium("--virtual-time-budget=15000", "--dump-dom", root + "/_docs_check.html")
    finally:
        checker.unlink()
        server.shutdown()
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    if found is None or found.group(1) == "pending":
        raise SystemExit("the checker page did not finish")
    report = json.loads(html.unescape(found.group(1)))
    problems = 0

    def problem(page: str, text: str) -> None:
        nonlocal problems
        problems += 1
        print(f"{page} at {width} px: {text}")

    for page, seen in report.items():
        for image in seen["images"]:
            if not image["loaded"]:
                problem(page, f"image {image['src']}: BROKEN")
            else:
                print(
                    f"{page} at {width} px: image {image['src']}: {image['scale']:.2f} of its size"
                )
        for table in seen["tables"]:
            if table["overflow"]:
                problem(page, f"table '{table['head']}' overflows by {table['overflow']} px")
            for cell in table["escapes"]:
                problem(page, f"a literal backslash in table cell '{cell}'")
        for block in seen["code"]:
            problem(page, f"code cut off by {block['cut']} px: '{block['line']}'")
    where = f", screenshots in {shots}/" if shots is not None else ""
    print(f"{len(report)} pages at {width} px{where}; {problems} problems")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default="site")
    parser.add_argument("--shots", default="site-shots")
    parser.add_argument("--no-shots", action="store_true", help="only the checks (CI)")
    parser.add_argument("--width", type=int, action="append", help="default: 1280 and 800")
    args = parser.parse_args()
    site, shots = Path(args.site).resolve(), None if args.no_shots else Path(args.shots)
    if shots is not None:
        shots.mkdir(exist_ok=True)
    problems = 0
    for chart in sorted(site.rglob("*.png")):
        if "assets" in chart.relative_to(site).parts:
            continue  # the theme's own images
        legend = png_legend(chart)
        if legend is None:
            problems += 1
            print(f"{chart.relative_to(site)}: a chart without a legend (no Legend metadata)")
        else:
            print(f"{chart.relative_to(site)}: legend {legend}")
    for width in args.width or [1280, 800]:
        problems += check_site(site, shots, width)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
