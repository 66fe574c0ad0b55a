"""The ``smolbook`` command line. Each command group lives beside the code it drives and registers itself
through ``register_cli(subparsers)``; only the module of the command being run is imported, so that
``smolbook run`` or ``smolbook report`` start without loading torch."""
from __future__ import annotations

import argparse
import importlib
import sys

from smolbook.errors import SmolbookError

# command -> (module defining register_cli, one-line help shown in `smolbook --help`)
COMMANDS = {
    "run": ("smolbook.runner", "execute the book's notebooks in order (resumable)"),
    "report": ("smolbook.report", "write the report card of a run folder"),
    "recipe": ("smolbook.recipe", "the SmolLM3 recipe as data (transcribed from the released configs)"),
    "data": ("smolbook.data", "corpus, tokenizer and data cards"),
    "model": ("smolbook.model", "SmolLM3 model presets: parameter counts and architecture"),
    "train": ("smolbook.train", "run a training spec (pretraining, long context, ...) at any scale"),
    "chat": ("smolbook.chat", "the SmolLM3 chat template: render conversations, parse completions"),
    "eval": ("smolbook.evaluate.lighteval_run", "evaluate a checkpoint with lighteval on the book's tasks (offline)"),
    "site": ("smolbook.site", "build the book's static website from a run (offline)"),
    "submit": ("smolbook.submit", "run the book as a SLURM batch job (multi-node training, requeue on preemption)"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smolbook", description="The SmolLM3 recipe as a book you can run.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module, help_text) in COMMANDS.items():
        if name == chosen:
            before = set(sub.choices)
            importlib.import_module(module).register_cli(sub)
            assert name in set(sub.choices) - before, f"{module}.register_cli must add the '{name}' command"
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SmolbookError as e:
        print(f"smolbook: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
