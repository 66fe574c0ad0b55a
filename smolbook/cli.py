"""The ``smolbook`` command line. Each command group lives beside the code it drives and
registers itself through ``register_cli(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that add a command group (each defines register_cli(subparsers)).
COMMAND_MODULES = ["smolbook.runner", "smolbook.report", "smolbook.recipe"]


from smolbook.errors import SmolbookError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smolbook", description="The SmolLM3 recipe as a book you can run.")
    sub = parser.add_subparsers(dest="command", required=True)
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SmolbookError as e:
        print(f"smolbook: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
