"""Every Python block in the README and docs/ runs as it stands, against the suite's server:
a newcomer's first copy and paste must work.

Each block runs as a script of its own, in a fresh directory holding the files the examples
name (``projects/``, ``site/``, ``pool.zfs``), with ``AWS_ENDPOINT_URL`` and credentials set
and the bucket ``my-bucket`` made, as ``make serve`` does, and some bytes on standard input.
A block that is only a fragment (a part of a larger program that the page shows whole
elsewhere, or another library's code this suite does not install) says so on the line before
its fence, ``<!-- fragment: why -->``; it must still compile.
"""

from __future__ import annotations

import ast
import contextlib
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import aws_env

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent> *)```python\n(?P<code>.*?)^(?P=indent)```$", re.M | re.S)
FRAGMENT = re.compile(r"<!-- fragment: .+ -->\s*$")
BUCKET = "my-bucket"


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str
    fragment: bool

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            found.append(
                Block(
                    page.relative_to(ROOT).as_posix(),
                    text.count("\n", 0, match.start()) + 1,
                    textwrap.dedent(match["code"]),
                    bool(FRAGMENT.search(before)),
                )
            )
    return found


BLOCKS = blocks()


def test_the_docs_have_blocks_and_most_run() -> None:
    """The collector finds the pages' blocks (a broken pattern would find none, and pass)."""
    assert len(BLOCKS) >= 15
    assert sum(not block.fragment for block in BLOCKS) >= 12


@pytest.mark.one_server
@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_a_docs_block_runs_as_copied(block: Block, server: Any, s3: Any, tmp_path: Path) -> None:
    compile(block.code, str(block), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if block.fragment:
        return
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    work = tmp_path / "work"
    for directory in ("projects", "site"):
        (work / directory).mkdir(parents=True)
        (work / directory / "notes.txt").write_text("kept\n" * 1000)
    (work / "pool.zfs").write_bytes(bytes(range(256)) * 8192)
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", block.code],
        cwd=work,
        env=aws_env(server.endpoint_url, home),
        input=b"some input\n",
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{block} failed:\n{done.stderr.decode()[-2000:]}"
