"""Write infra/constraints.txt: the exact versions of vidlake's runtime dependency closure, as installed.

    .venv/bin/python infra/constraints.py          # rewrite infra/constraints.txt from this environment
    .venv/bin/python infra/constraints.py --check  # exit 1 when the file differs from this environment

The closure starts at pyproject.toml's ``dependencies`` (extras such as ``ray[data,serve]`` included, the
``test`` and ``bench`` extras left out) and follows each installed distribution's requirements whose
markers hold here. The image installs with ``pip install -c infra/constraints.txt .``, so it gets the
versions the test suite ran with. Run it in the environment the tests passed in (Linux, Python of the
image), after changing a pin in pyproject.toml.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "infra" / "constraints.txt"
HEADER = """\
# Exact versions of vidlake's runtime dependencies (pyproject.toml's `dependencies` and what they need),
# written by `python infra/constraints.py` from the environment the tests passed in ({python}, {platform}).
# Used by infra/Dockerfile: pip install -c infra/constraints.txt .
"""


def closure(requirements: list[str]) -> dict[str, str]:
    """Canonical name -> installed version for ``requirements`` and everything they need here."""
    env = default_environment()
    found: dict[str, str] = {}
    pending = [(Requirement(r), "") for r in requirements]
    seen: set[tuple[str, str]] = set()
    while pending:
        req, extra = pending.pop()
        if req.marker and not req.marker.evaluate({**env, "extra": extra}):
            continue
        name = canonicalize_name(req.name)
        extras = tuple(sorted(req.extras)) or ("",)
        if all((name, e) in seen for e in extras):
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{req.name} (needed by the closure) is not installed here") from None
        found[name] = dist.version
        for e in extras:
            if (name, e) in seen:
                continue
            seen.add((name, e))
            pending.extend((Requirement(r), e) for r in dist.requires or [])
    return found


def render() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = closure(project["dependencies"])
    pins.pop(canonicalize_name(project["name"]), None)
    header = HEADER.format(python=f"Python {sys.version_info.major}.{sys.version_info.minor}", platform=sys.platform)
    return header + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = render()
    if args.check:
        same = OUT.is_file() and OUT.read_text() == text
        print(f"{OUT.relative_to(ROOT)} {'matches' if same else 'differs from'} this environment")
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)} ({text.count(chr(10)) - HEADER.count(chr(10))} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
