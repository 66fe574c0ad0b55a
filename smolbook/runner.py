"""``smolbook run``: execute the book's notebooks in order with papermill, resumably.

Each ``notebooks/NN_name.py`` (Jupytext percent format) is converted to a notebook and executed with
``scale``, ``seed`` and ``output_dir`` injected into its ``parameters`` cell. The run folder keeps the
executed notebooks and ``manifest.json``. A notebook is skipped when its fingerprint (its source, the
parameters, the library's source and the fingerprints of the notebooks it ``needs``) matches the last
successful run, so a rerun after an interruption picks up where it stopped and an edit reruns exactly the
edited notebook and those downstream of it.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from smolbook.errors import SmolbookError
from smolbook.fingerprint import PACKAGE_DIR, library_hash  # noqa: F401 (library_hash: re-exported)
from smolbook.report import write_report
from smolbook.scales import DEFAULT_SCALE, SCALE_NAMES

REPO_DIR = PACKAGE_DIR.parent
NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.py$")
TRACKED_PACKAGES = ("smolbook", "torch", "transformers", "trl", "accelerate", "datasets", "tokenizers",
                    "lighteval", "mergekit", "papermill", "jupytext", "matplotlib")


@dataclass
class Notebook:
    """One chapter source: ``notebooks/NN_name.py``."""

    path: Path
    number: str
    name: str  # "07_pretraining"
    needs: list[str] = field(default_factory=list)
    parameters: tuple[str, ...] = ()  # the names its ``parameters`` cell assigns: what papermill may set

    @property
    def source(self) -> str:
        return self.path.read_text()


class RunFailed(SmolbookError):
    """A notebook failed: the message names it, the failing cell and the error's last lines."""


def default_notebooks_dir() -> Path:
    """``./notebooks`` when run from a checkout, else the one beside the installed package."""
    here = Path.cwd() / "notebooks"
    return here if here.is_dir() else REPO_DIR / "notebooks"


def discover(notebooks_dir: Path) -> list[Notebook]:
    """All ``NN_name.py`` notebooks in book order, with the ``needs`` of their Jupytext header."""
    import jupytext

    if not notebooks_dir.is_dir():
        raise SmolbookError(f"no notebooks folder at {notebooks_dir}")
    books = []
    for path in sorted(notebooks_dir.glob("*.py")):
        m = NOTEBOOK_PATTERN.match(path.name)
        if not m:
            continue
        nb = jupytext.read(path)
        needs = nb.metadata.get("smolbook", {}).get("needs", []) or []
        books.append(Notebook(path=path, number=m.group(1), name=path.stem, needs=[str(n) for n in needs],
                              parameters=_parameter_names(nb)))
    if not books:
        raise SmolbookError(f"no NN_name.py notebooks in {notebooks_dir}")
    names = {b.name for b in books}
    for b in books:
        unknown = [n for n in b.needs if n not in names]
        if unknown:
            raise SmolbookError(f"{b.path.name} needs unknown notebook(s) {', '.join(unknown)}")
    return books


def _parameter_names(nb: Any) -> tuple[str, ...]:
    """The variables a notebook's ``parameters`` cell assigns, in order."""
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return ()
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return ()
    names = [t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
             for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)]
    return tuple(dict.fromkeys(names))


def check_params(books: list[Notebook], params: dict[str, Any]) -> None:
    """Refuse a chapter option that none of ``books`` names in its parameters cell: papermill would pass it on,
    every notebook would ignore it, and the run would redo chapters for a typo."""
    known = {n for b in books for n in b.parameters}
    unknown = [k for k in params if k not in known]
    if unknown:
        takes = "; ".join(f"{b.name}: {', '.join(n for n in b.parameters if n not in RESERVED_PARAMS) or '(none)'}"
                          for b in books)
        raise SmolbookError(f"unknown chapter parameter {', '.join(map(repr, unknown))}: nothing ran. The chosen "
                            f"notebooks take {takes} (and --scale/--seed/--output)")


def _resolve(token: str, books: list[Notebook]) -> Notebook:
    for b in books:
        if token in (b.number, b.name, b.path.name):
            return b
    choices = ", ".join(b.name for b in books)
    raise SmolbookError(f"no notebook '{token}': choose from {choices}")


def select(books: list[Notebook], only: str | None = None, start: str | None = None) -> list[Notebook]:
    """The notebooks ``--only 03,04`` / ``--from 07`` ask for, in book order."""
    chosen = books
    if only:
        wanted = {_resolve(t.strip(), books).name for t in only.split(",") if t.strip()}
        chosen = [b for b in chosen if b.name in wanted]
    if start:
        first = _resolve(start.strip(), books)
        chosen = [b for b in chosen if b.number >= first.number]
    return chosen


def fingerprints(books: list[Notebook], params: dict[str, Any]) -> dict[str, str]:
    """Fingerprint of every notebook: its source, the parameters, the library and what it needs."""
    lib = library_hash()
    by_name = {b.name: b for b in books}
    out: dict[str, str] = {}

    def fp(b: Notebook) -> str:
        if b.name not in out:
            h = hashlib.sha256()
            h.update(hashlib.sha256(b.source.encode()).hexdigest().encode())
            h.update(json.dumps(params, sort_keys=True).encode())
            h.update(lib.encode())
            for n in sorted(b.needs):
                h.update(fp(by_name[n]).encode())
            out[b.name] = h.hexdigest()
        return out[b.name]

    for b in books:
        fp(b)
    return out


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in TRACKED_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def git_revision(repo: Path = REPO_DIR) -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


class Manifest:
    """``DIR/manifest.json``: per notebook its status, seconds, parameters and hashes; written after every change."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "manifest.json"
        self.data: dict[str, Any] = {"notebooks": {}}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                # A manifest cut short by a crash: start afresh rather than trust half of it.
                self.data = {"notebooks": {}}
        self.data.setdefault("notebooks", {})

    def entry(self, name: str) -> dict[str, Any]:
        return self.data["notebooks"].get(name, {})

    def set(self, name: str, **fields: Any) -> None:
        self.data["notebooks"].setdefault(name, {}).update(fields)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True))
        tmp.replace(self.path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _failure_message(book: Notebook, err: Exception, executed: Path) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        first_line = next((ln for ln in err.source.splitlines() if ln.strip()), "")
        tb = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(err.traceback)).strip().splitlines()
        tail = "\n    ".join(tb[-6:])
        return (f"{book.path.name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
                f"{first_line}\n    {tail}\n  executed notebook with outputs: {executed}")
    return f"{book.path.name} failed: {type(err).__name__}: {err}\n  executed notebook: {executed}"


def execute(book: Notebook, run_dir: Path, params: dict[str, Any], progress: bool = True) -> Path:
    """Convert one notebook with Jupytext and execute it with papermill; returns the executed ``.ipynb``."""
    import jupytext
    import papermill

    nb_dir = run_dir / "notebooks"
    nb_dir.mkdir(parents=True, exist_ok=True)
    source_ipynb = nb_dir / f".{book.name}.source.ipynb"
    executed = nb_dir / f"{book.name}.ipynb"
    jupytext.write(jupytext.read(book.path), source_ipynb, fmt="ipynb")
    papermill.execute_notebook(
        str(source_ipynb), str(executed), parameters=params, kernel_name="python3",
        progress_bar={"desc": f"  {book.name}", "leave": False} if progress else False,
        cwd=str(book.path.parent.parent),
        # The kernel's own start-up warnings (e.g. about its local TCP transport) are noise in a book run.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    source_ipynb.unlink(missing_ok=True)
    return executed


@dataclass
class RunSummary:
    run_dir: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


RESERVED_PARAMS = ("scale", "seed", "output_dir")


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["apo_loss=sigmoid", "seeds=3"]`` -> ``{"apo_loss": "sigmoid", "seeds": 3}`` (values read as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise SmolbookError(f"--param expects key=value with a Python name as key, got '{item}'")
        if key in RESERVED_PARAMS:
            raise SmolbookError(f"--param {key}=...: use --{key.replace('_dir', '')} for {key}")
        try:
            out[key] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key] = value
    return out


def run_book(scale: str = DEFAULT_SCALE, output: str | os.PathLike | None = None, only: str | None = None,
             start: str | None = None, force: bool = False, seed: int = 0, notebooks_dir: Path | None = None,
             progress: bool = True, params: dict[str, Any] | None = None) -> RunSummary:
    """Run the selected notebooks in order; the first failure raises :class:`RunFailed`.

    ``params`` are chapter options passed through papermill (a chapter reads those its parameters cell names) and
    into every notebook's fingerprint, so changing one reruns the chapters.
    """
    if scale not in SCALE_NAMES:
        raise SmolbookError(f"unknown scale '{scale}': choose one of {', '.join(SCALE_NAMES)}")
    run_dir = Path(output if output is not None else f"runs/{scale}").resolve()
    if " " in str(run_dir):
        # papermill, accelerate and mergekit each take paths on command lines; one path with a space breaks a stage.
        raise SmolbookError(f"run folder '{run_dir}' has a space in its path: choose a folder without spaces (--output)")
    books = discover(notebooks_dir or default_notebooks_dir())
    chosen = select(books, only, start)
    extra = dict(params or {})
    clash = [k for k in extra if k in RESERVED_PARAMS]
    if clash:
        raise SmolbookError(f"chapter options cannot set {', '.join(clash)}: use the run's own arguments")
    check_params(chosen, extra)
    params = {"scale": scale, "seed": int(seed), "output_dir": str(run_dir), **extra}
    fps = fingerprints(books, params)
    manifest = Manifest(run_dir)
    manifest.data.update({"scale": scale, "seed": int(seed), "git_revision": git_revision(), "versions": versions(),
                          "started": _now()})
    manifest.save()
    summary = RunSummary(run_dir=run_dir)
    t_run = time.perf_counter()
    for i, book in enumerate(chosen, 1):
        prev = manifest.entry(book.name)
        executed = run_dir / "notebooks" / f"{book.name}.ipynb"
        head = f"[{i}/{len(chosen)}] {book.name}"
        if not force and prev.get("status") == "ok" and prev.get("fingerprint") == fps[book.name] and executed.exists():
            print(f"{head}: unchanged since its last successful run ({prev.get('seconds', 0):.0f}s), skipped", flush=True)
            summary.skipped.append(book.name)
            continue
        print(f"{head}: running at scale {scale} (elapsed {time.perf_counter() - t_run:.0f}s)", flush=True)
        manifest.set(book.name, status="running", started=_now(), parameters=params,
                     source_hash=hashlib.sha256(book.source.encode()).hexdigest(), fingerprint=fps[book.name],
                     needs=book.needs)
        t0 = time.perf_counter()
        try:
            execute(book, run_dir, params, progress=progress)
        except KeyboardInterrupt:
            manifest.set(book.name, status="interrupted", seconds=round(time.perf_counter() - t0, 2))
            print(f"{head}: interrupted; rerun the same command to pick up here", file=sys.stderr, flush=True)
            raise
        except Exception as err:  # papermill raises several types; all end the run here
            manifest.set(book.name, status="failed", seconds=round(time.perf_counter() - t0, 2), finished=_now())
            raise RunFailed(_failure_message(book, err, executed)) from None
        dt = time.perf_counter() - t0
        manifest.set(book.name, status="ok", seconds=round(dt, 2), finished=_now())
        summary.ran.append(book.name)
        print(f"{head}: done in {dt:.1f}s (elapsed {time.perf_counter() - t_run:.0f}s)", flush=True)
    summary.seconds = time.perf_counter() - t_run
    manifest.data["finished"] = _now()
    manifest.save()
    return summary


def _cmd_run(args: argparse.Namespace) -> int:
    notebooks_dir = Path(args.notebooks) if args.notebooks else None
    try:
        summary = run_book(scale=args.scale, output=args.output, only=args.only, start=args.start, force=args.force,
                           seed=args.seed, notebooks_dir=notebooks_dir, progress=not args.no_progress,
                           params=parse_params(args.param))
    except RunFailed as e:
        print(f"smolbook: {e}", file=sys.stderr)
        out = Path(args.output if args.output is not None else f"runs/{args.scale}")
        if (out / "manifest.json").exists():
            write_report(out)
        return 1
    except KeyboardInterrupt:
        return 130
    md, _ = write_report(summary.run_dir)
    print(f"ran {len(summary.ran)}, skipped {len(summary.skipped)} notebook(s) in {summary.seconds:.0f}s")
    print(f"results: {summary.run_dir}  (executed notebooks in notebooks/, report card {md})")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="execute the book's notebooks in order (resumable)",
                       description="Execute notebooks/NN_*.py in order with papermill, skipping unchanged ones.")
    p.add_argument("--scale", default=DEFAULT_SCALE, help=f"one of {', '.join(SCALE_NAMES)} (default {DEFAULT_SCALE})")
    p.add_argument("--only", help="comma-separated notebooks to run, e.g. 03,04")
    p.add_argument("--from", dest="start", help="start at this notebook, e.g. 07")
    p.add_argument("--output", help="run folder (default runs/<scale>)")
    p.add_argument("--force", action="store_true", help="rerun notebooks even when unchanged")
    p.add_argument("--seed", type=int, default=0, help="seed injected into every notebook (default 0)")
    p.add_argument("--notebooks", help="folder of NN_name.py notebooks (default ./notebooks)")
    p.add_argument("--no-progress", action="store_true", help="no live cell progress bar")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a chapter option passed to every notebook through papermill, e.g. --param apo_loss=sigmoid "
                        "(repeatable; part of each notebook's fingerprint)")
    p.set_defaults(func=_cmd_run)
