"""The runner on small real notebooks: order, selection, skipping, reruns, failures, manifest, interruption."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from smolbook.errors import SmolbookError
from smolbook.report import write_report
from smolbook.runner import RunFailed, discover, run_book, select

HEADER = """\
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
{meta}# ---
"""


def write_nb(folder: Path, name: str, body: str, needs: list[str] | None = None) -> Path:
    meta = f"#   smolbook:\n#     needs: [{', '.join(needs)}]\n" if needs else ""
    src = HEADER.format(meta=meta) + textwrap.dedent("""
        # %% tags=["parameters"]
        scale = "tiny"
        seed = 0
        output_dir = "runs/tiny"

        # %%
        from pathlib import Path
        from smolbook import Chapter
        book = Chapter("{name}", scale, seed, output_dir)
        """).format(name=name) + textwrap.dedent(body)
    path = folder / f"{name}.py"
    path.write_text(src)
    return path


@pytest.fixture
def book(tmp_path: Path) -> Path:
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    write_nb(nbs, "00_first", """
        # %%
        Path(output_dir, "first.txt").write_text(f"{scale} {seed}")
        book.number("answer", 42, unit="units")
        """)
    write_nb(nbs, "01_second", """
        # %%
        assert Path(output_dir, "first.txt").read_text() == f"{scale} {seed}"
        book.verdict("the first chapter ran before me", "first.txt present", "holds")
        """, needs=["00_first"])
    write_nb(nbs, "02_third", """
        # %%
        book.number("pi", 3.14159)
        """)
    (nbs / "README.py").write_text("# not a chapter\n")
    return nbs


def statuses(run: Path) -> dict[str, str]:
    return {k: v["status"] for k, v in json.loads((run / "manifest.json").read_text())["notebooks"].items()}


def test_discover_orders_and_reads_needs(book: Path):
    books = discover(book)
    assert [b.name for b in books] == ["00_first", "01_second", "02_third"]
    assert books[1].needs == ["00_first"]


def test_select_only_and_from(book: Path):
    books = discover(book)
    assert [b.name for b in select(books, only="02,00")] == ["00_first", "02_third"]
    assert [b.name for b in select(books, start="01")] == ["01_second", "02_third"]
    with pytest.raises(SmolbookError, match="choose from 00_first, 01_second, 02_third"):
        select(books, only="07")


def test_run_skip_rerun_and_manifest(book: Path, tmp_path: Path):
    run = tmp_path / "run"
    s1 = run_book("smoke", output=run, notebooks_dir=book, progress=False)
    assert s1.ran == ["00_first", "01_second", "02_third"]
    manifest = json.loads((run / "manifest.json").read_text())
    entry = manifest["notebooks"]["01_second"]
    assert entry["status"] == "ok" and entry["parameters"]["scale"] == "smoke"
    assert entry["parameters"]["output_dir"] == str(run.resolve()) and len(entry["source_hash"]) == 64
    assert manifest["versions"]["transformers"] and manifest["git_revision"]
    assert (run / "notebooks" / "01_second.ipynb").exists()

    s2 = run_book("smoke", output=run, notebooks_dir=book, progress=False)
    assert s2.ran == [] and len(s2.skipped) == 3

    # Editing the first notebook reruns it and the one that needs it, not the independent third.
    p = book / "00_first.py"
    p.write_text(p.read_text() + "\n# %%\nprint('edited')\n")
    s3 = run_book("smoke", output=run, notebooks_dir=book, progress=False)
    assert s3.ran == ["00_first", "01_second"] and s3.skipped == ["02_third"]

    # Other parameters are other inputs; --force reruns regardless.
    assert run_book("smoke", output=run, notebooks_dir=book, seed=1, progress=False).ran == s1.ran
    assert run_book("smoke", output=run, only="02", force=True, seed=1, notebooks_dir=book, progress=False).ran == ["02_third"]


def test_report_card(book: Path, tmp_path: Path):
    run = tmp_path / "run"
    run_book("smoke", output=run, notebooks_dir=book, progress=False)
    md, js = write_report(run)
    card = json.loads(js.read_text())
    assert card["verdict_counts"] == {"holds": 1, "differs": 0, "inconclusive": 0}
    assert card["chapters"][0]["numbers"]["answer"]["value"] == 42
    text = md.read_text()
    assert "the first chapter ran before me" in text and "| answer | 42 | units |" in text
    assert "| transformers |" in text


def test_failure_names_notebook_and_cell(book: Path, tmp_path: Path):
    write_nb(book, "01_second", """
        # %%
        x = 1

        # %%
        raise ValueError("the sky fell")
        """)
    run = tmp_path / "run"
    with pytest.raises(RunFailed) as info:
        run_book("smoke", output=run, notebooks_dir=book, progress=False)
    msg = str(info.value)
    assert "01_second.py failed in cell" in msg and 'raise ValueError("the sky fell")' in msg
    assert "ValueError: the sky fell" in msg
    assert statuses(run) == {"00_first": "ok", "01_second": "failed"}  # the first failure stops the run


def smolbook(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smolbook.cli", *args], capture_output=True, text=True, **kw)


@pytest.mark.parametrize("args, needle", [
    (["--scale", "huge"], "unknown scale 'huge': choose one of smoke, tiny, gpu, small, full"),
    (["--only", "99"], "no notebook '99': choose from"),
    (["--only", "00", "--param", "nope=1"], "unknown chapter parameter 'nope': nothing ran"),
])
def test_cli_bad_input_is_one_line_exit_2(args, needle, book: Path, tmp_path: Path):
    r = smolbook("run", *args, "--notebooks", str(book), "--output", str(tmp_path / "r"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and needle in r.stderr and "Traceback" not in r.stderr


def test_cli_failure_exits_nonzero(book: Path, tmp_path: Path):
    write_nb(book, "02_third", "\n# %%\n1/0\n")
    r = smolbook("run", "--scale", "smoke", "--notebooks", str(book), "--output", str(tmp_path / "r"), "--no-progress")
    assert r.returncode == 1
    assert "02_third.py failed in cell" in r.stderr and "ZeroDivisionError" in r.stderr
    assert (tmp_path / "r" / "report.md").exists()


def test_interrupted_run_picks_up_where_it_stopped(book: Path, tmp_path: Path):
    (book / "01_second.py").unlink()
    write_nb(book, "01_slow", """
        # %%
        import time
        Path(output_dir, "slow-started").touch()
        time.sleep(60)
        """)
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "smolbook.cli", "run", "--scale", "smoke", "--notebooks", str(book),
                             "--output", str(run), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            # pytest-xdist workers ignore SIGINT and children inherit that: restore the default,
                            # as in a terminal, so Python turns Ctrl-C into KeyboardInterrupt.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (run / "slow-started").exists():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the runner and its kernel both get SIGINT
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "interrupted" in err
    assert statuses(run) == {"00_first": "ok", "01_slow": "interrupted"}

    write_nb(book, "01_slow", "\n# %%\nprint('fast now')\n")
    s = run_book("smoke", output=run, notebooks_dir=book, progress=False)
    assert s.skipped == ["00_first"] and s.ran == ["01_slow", "02_third"]


def test_report_of_missing_run_names_the_command(tmp_path: Path):
    r = smolbook("report", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "make one with `smolbook run --scale tiny`" in r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_param_reaches_the_notebook_and_its_fingerprint(book: Path, tmp_path: Path):
    from smolbook.runner import parse_params

    nb = write_nb(book, "02_option", """
        # %%
        Path(output_dir, "option.txt").write_text(str(apo_loss))
        """)
    # a chapter option is a variable of the notebook's one parameters cell
    nb.write_text(nb.read_text().replace('output_dir = "runs/tiny"\n', 'output_dir = "runs/tiny"\napo_loss = "apo_zero"\n'))
    out = tmp_path / "run"
    run_book("smoke", out, only="02", notebooks_dir=book, progress=False)
    assert (out / "option.txt").read_text() == "apo_zero"
    s = run_book("smoke", out, only="02", notebooks_dir=book, progress=False, params=parse_params(["apo_loss=sigmoid"]))
    assert s.ran == ["02_option"] and (out / "option.txt").read_text() == "sigmoid"
    s = run_book("smoke", out, only="02", notebooks_dir=book, progress=False, params=parse_params(["apo_loss=sigmoid"]))
    assert s.skipped == ["02_option"]
    assert parse_params(["n=3", "ratio=0.5", "on=true"]) == {"n": 3, "ratio": 0.5, "on": True}
    # a typo is refused before anything runs, naming what the chapter takes
    with pytest.raises(SmolbookError, match=r"'apo_los'.*02_option: apo_loss"):
        run_book("smoke", out, only="02", notebooks_dir=book, progress=False, params=parse_params(["apo_los=sigmoid"]))
    assert (out / "option.txt").read_text() == "sigmoid"
    for bad in (["novalue"], ["seed=3"], ["2x=1"]):
        with pytest.raises(SmolbookError, match="--param"):
            parse_params(bad)


def test_run_folder_with_a_space_is_refused(book: Path, tmp_path: Path):
    with pytest.raises(SmolbookError, match="space"):
        run_book("smoke", tmp_path / "my runs", notebooks_dir=book, progress=False)
