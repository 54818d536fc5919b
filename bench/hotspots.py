"""Summarise a py-spy `--format raw --full-filenames --function` profile: where the server's time goes.

`python -m bench.hotspots FILE.folded [--top 10]` prints, as shares of all (non-idle) samples:
* time by package: own (the sampled frame is in it) and inclusive (any frame of the stack is in it);
* the functions with the most own time, any package;
* our functions (idp/, wsgi.py) with the most cumulative time;
* the library functions our code calls directly, by cumulative time (what a call into Authlib,
  SQLAlchemy, Jinja ... costs, seen from idp/).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = re.compile(r"/idp/[^/]+(/[^/]+)*\.py$|/wsgi\.py$")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
# Distribution directory names that belong to one family in the summary.
FAMILY = {
    "psycopg_binary": "psycopg",
    "psycopg_pool": "psycopg",
    "markupsafe": "jinja2",
    "flask_wtf": "wtforms",
    "flask_babel": "babel",
    "_cffi_backend": "cffi",
}


@dataclass(frozen=True)
class Frame:
    func: str
    file: str
    package: str

    @property
    def ours(self) -> bool:
        return self.package == "idp"

    def label(self) -> str:
        path = self.file
        if self.ours:
            path = "idp/" + path.rsplit("/idp/", 1)[1] if "/idp/" in path else path.rsplit("/", 1)[-1]
        elif "/site-packages/" in path:
            path = path.split("/site-packages/", 1)[1]
        elif "/lib/python3" in path:
            path = path.split("/lib/", 1)[1].split("/", 1)[-1]
        return f"{self.func} ({path})"


def package_of(path: str) -> str:
    if "/site-packages/" in path:
        top = path.split("/site-packages/", 1)[1].split("/", 1)[0]
        top = top.removesuffix(".py").split(".", 1)[0]
        return FAMILY.get(top, top)
    if OURS.search(path):  # in this checkout or another one (production.py --app-dir)
        return "idp"
    root = str(ROOT) + "/"
    if path.startswith(root):
        return path[len(root) :].split("/", 1)[0]
    if "/lib/python3" in path or path.startswith("<frozen"):
        return "stdlib"
    return "other"


def parse_frame(text: str) -> Frame | None:
    if text.startswith(("process ", "thread ")):
        return None
    m = FRAME.match(text)
    if not m:
        return Frame(text, "?", "other")
    return Frame(m["func"], m["file"], package_of(m["file"]))


Stack = tuple[Frame, ...]


def load(path: Path) -> Counter[Stack]:
    """Stacks (root first) and their sample counts."""
    stacks: Counter[Stack] = Counter()
    cache: dict[str, Frame | None] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        frames = []
        for text in body.split(";"):
            if text not in cache:
                cache[text] = parse_frame(text)
            frame = cache[text]
            if frame is not None:
                frames.append(frame)
        if frames:
            stacks[tuple(frames)] += int(count)
    return stacks


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:5.1f}%" if total else "    -"


def render(stacks: Counter[Stack], top: int = 10) -> str:
    total = sum(stacks.values())
    if not total:
        return "  (no samples)"
    own_pkg: Counter[str] = Counter()
    incl_pkg: Counter[str] = Counter()
    own_fn: Counter[Frame] = Counter()
    cum_ours: Counter[Frame] = Counter()
    calls_out: Counter[tuple[Frame, Frame]] = Counter()
    for stack, n in stacks.items():
        leaf = stack[-1]
        own_pkg[leaf.package] += n
        own_fn[leaf] += n
        for pkg in {f.package for f in stack}:
            incl_pkg[pkg] += n
        for frame in set(stack):
            if frame.ours:
                cum_ours[frame] += n
        seen: set[tuple[Frame, Frame]] = set()
        for caller, callee in zip(stack, stack[1:], strict=False):
            if caller.ours and not callee.ours and (caller, callee) not in seen:
                seen.add((caller, callee))
                calls_out[(caller, callee)] += n

    lines = [f"  {total} samples (all server processes and threads)"]
    lines.append("  by package:      own   inclusive")
    for pkg, n in own_pkg.most_common():
        if n * 200 < total and incl_pkg[pkg] * 50 < total:
            continue  # under 0.5% own and 2% inclusive
        lines.append(f"    {pkg:<14}{_pct(n, total)}   {_pct(incl_pkg[pkg], total)}")
    lines.append(f"  top {top} functions by own time:")
    for frame, n in own_fn.most_common(top):
        lines.append(f"    {_pct(n, total)}  [{frame.package}] {frame.label()}")
    lines.append(f"  top {top} of our functions (idp/) by cumulative time:")
    for frame, n in cum_ours.most_common(top):
        lines.append(f"    {_pct(n, total)}  {frame.label()}")
    lines.append(f"  top {top} library calls made by our code, by cumulative time:")
    for (caller, callee), n in calls_out.most_common(top):
        lines.append(f"    {_pct(n, total)}  [{callee.package}] {callee.label()}  <- {caller.func}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hotspots", description=__doc__)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=10)
    args = p.parse_args(argv)
    for path in args.files:
        print(f"{path}:")
        print(render(load(path), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
