#!/usr/bin/env bash
# Set up everything smolbook needs in ./.venv (idempotent; `make book` and `make test` call it).
#   scripts/setup.sh          the book: Python environment + the site's npm packages
#   scripts/setup.sh --test   also the test tools and Chromium for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

step() { printf '\n== %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
PIP="$VENV/bin/pip"

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    step "installing torch (CUDA build: a GPU is present)"
    "$PIP" install -q "torch>=2.5"
  else
    # No GPU: pin the CPU build. An unpinned torch pulls a multi-GB CUDA build; 2.13.0 is the CPU wheel on
    # local disk on the project's machines. Elsewhere, set TORCH_INDEX_URL to your CPU wheel index.
    step "installing torch 2.13.0 (CPU build: no CUDA GPU found)"
    "$PIP" install -q torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  fi
fi

extras="[serving]"   # chapter 15 serves the model (transformers serve + the openai client)
[ $with_tests = 1 ] && extras="[test,serving]"
step "installing smolbook$extras and its dependencies"
"$PIP" install -q -e ".$extras" 2>&1 | grep -v "is ignored: it is neither" || true
"$VENV/bin/python" -c "import smolbook, transformers, trl" || { echo "setup: smolbook did not install" >&2; exit 1; }

if [ -f package.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: npm (Node.js >= 18) is needed to render the book's site: install Node.js, then rerun" >&2; exit 1
  fi
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    step "installing the site's npm packages"
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
  fi
fi

apt_updated=0
# apt_install PACKAGE...: Debian packages, as root only (apt-get update once per set-up).
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  if [ $apt_updated = 0 ]; then apt-get update -qq && apt_updated=1 || return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ $with_tests = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  step "installing Chromium for the browser test"
  apt_install chromium || echo "setup: the browser test needs Debian's chromium: sudo apt-get install chromium" >&2
fi

if [ $with_tests = 1 ]; then
  # The SLURM tests start a one-node cluster (munged, slurmctld, slurmd) and check the generated job scripts.
  missing=()
  for tool in slurm-wlm:slurmctld slurm-wlm:sbatch munge:munged shellcheck:shellcheck; do
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "${tool#*:}" >/dev/null 2>&1; then
      case " ${missing[*]} " in *" ${tool%%:*} "*) ;; *) missing+=("${tool%%:*}") ;; esac
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]} for the SLURM tests"
    apt_install "${missing[@]}" ||
      echo "setup: the SLURM tests need Debian's ${missing[*]} (as root: apt-get install ${missing[*]}); they skip without" >&2
  fi
fi
echo "setup: done"
