"""``make docs-check``: every page of the built site, as headless Chromium renders it.

    python -m tests.docs_pages [SITE_DIR] [--shots DIR] [--width 1280]

Serves the site on 127.0.0.1, takes a screenshot of each page (in --shots, to look at), and
loads each page in a checker page that reports, after the page's scripts ran: images that did
not load, tables wider than the column they sit in (which would scroll sideways), and each
image's scale on screen (a chart drawn wider than the column is shrunk, and its type with
it). Exits 1 if an image is broken or a table overflows. Needs Debian's chromium.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
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
      return {overflow: Math.max(0, table.scrollWidth - box.clientWidth),
              head: table.rows[0] ? table.rows[0].innerText.slice(0, 60) : ""};
    });
    report[pages[index]] = {images, tables};
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
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default="site")
    parser.add_argument("--shots", default="site-shots")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    site, shots = Path(args.site).resolve(), Path(args.shots)
    shots.mkdir(exist_ok=True)
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
    checker.write_text(
        CHECKER.replace("PAGES", json.dumps(pages)).replace("WIDTH", str(args.width))
    )
    try:
        for page in pages:
            name = page.strip("/").replace("/", "-") or "index"
            chromium(
                f"--window-size={args.width},2400",
                f"--screenshot={(shots / name).resolve()}.png",
                root + page,
            )
        dom = chromium("--virtual-time-budget=60000", "--dump-dom", root + "/_docs_check.html")
    finally:
        checker.unlink()
        server.shutdown()
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    if found is None or found.group(1) == "pending":
        raise SystemExit("the checker page did not finish")
    report = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    problems = 0
    for page, seen in report.items():
        for image in seen["images"]:
            note = f"shown at {image['scale']:.2f} of its size" if image["loaded"] else "BROKEN"
            problems += not image["loaded"]
            print(f"{page}: image {image['src']}: {note}")
        for table in seen["tables"]:
            if table["overflow"]:
                problems += 1
                print(f"{page}: table '{table['head']}' overflows by {table['overflow']} px")
    print(f"{len(report)} pages, screenshots in {shots}/; {problems} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
