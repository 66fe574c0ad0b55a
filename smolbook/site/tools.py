"""The site's tools and places: the checkout's MyST config and ``site/`` scripts, Node.js and the npm packages
(``mystmd``, ``myst-to-html``, ``katex``, ``playwright-core``), Debian's Chromium. Each missing one is a one-line
error naming the command that installs it."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from smolbook.errors import SmolbookError
from smolbook.scales import DEFAULT_SCALE

REPO_DIR = Path(__file__).resolve().parents[2]
SITE_DIR = REPO_DIR / "site"
NODE_MODULES = REPO_DIR / "node_modules"
MYST_CONFIG = REPO_DIR / "myst.yml"
MAKE_RUN = f"smolbook run --scale {DEFAULT_SCALE}"
NPM_INSTALL = f"npm ci --prefix {REPO_DIR}"
NODE_PACKAGES = ("mystmd", "myst-to-html", "katex")
CHROMIUM = "/usr/bin/chromium"


def default_run_dir() -> Path:
    """The run folder that ``smolbook run`` writes by default."""
    return Path(f"runs/{DEFAULT_SCALE}")


def check_run(run_dir: Path) -> list[Path]:
    """The run's executed notebooks; a clear error when there is no run to build from."""
    if not run_dir.is_dir():
        raise SmolbookError(f"no run folder at {run_dir}: make one with `{MAKE_RUN}`")
    notebooks = sorted((run_dir / "notebooks").glob("*.ipynb"))
    if not notebooks:
        raise SmolbookError(f"{run_dir / 'notebooks'} holds no executed notebooks: make a run with `{MAKE_RUN}`")
    return notebooks


def node() -> str:
    """The ``node`` executable."""
    node = shutil.which("node")
    if node is None:
        raise SmolbookError("the site is built with Node.js (20 or newer), which is not installed: "
                            f"`apt-get install -y nodejs npm`, then `{NPM_INSTALL}`")
    return node


def node_tool(package: str) -> Path:
    """The folder of an installed npm package."""
    path = NODE_MODULES / package
    if not path.is_dir():
        missing = [p for p in NODE_PACKAGES if not (NODE_MODULES / p).is_dir()]
        raise SmolbookError(f"npm package(s) {', '.join(missing or [package])} not installed: run `{NPM_INSTALL}`")
    return path


def run_node(args: list[str], cwd: Path, what: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a Node.js script offline; its failure is one error naming ``what`` and the tail of its output."""
    env = dict(os.environ)
    # mystmd asks the npm registry whether a newer mystmd exists; point it at a closed local port so the
    # build never touches the network (the check fails quietly).
    env["npm_config_registry"] = "http://127.0.0.1:9/"
    env.setdefault("NO_COLOR", "1")
    try:
        proc = subprocess.run([node(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SmolbookError(f"{what} took over {timeout:.0f}s and was stopped (staged in {cwd})") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise SmolbookError(f"{what} failed (exit {proc.returncode}) in {cwd}: {tail}")
    return proc


def chromium_path() -> str | None:
    """Debian's chromium, if installed (``apt-get install -y chromium``)."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
