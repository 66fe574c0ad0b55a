"""pyproject.toml and environment.yml declare the same dependencies."""
from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _norm(spec: str) -> tuple[str, str]:
    req = Requirement(spec)
    return req.name.lower().replace("_", "-"), str(req.specifier)


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_norm(s) for s in project["dependencies"]}
    declared |= {_norm(s) for extra in project["optional-dependencies"].values() for s in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_pins = {_norm(s) for s in pip_block if not s.startswith("-")}
    assert conda_pins == declared, (
        f"only in environment.yml: {sorted(conda_pins - declared)}; only in pyproject.toml: {sorted(declared - conda_pins)}")
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"])


def test_known_breakages_stay_pinned():
    deps = {_norm(s)[0]: _norm(s)[1] for s in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert deps["xxhash"] == "<4"  # lighteval 0.13 hashes str; xxhash 4 rejects it
    assert "<6" in deps["transformers"] and ">=5.0" in deps["transformers"]
