"""``smolbook data ...``: build the data products and regenerate the data cards."""
from __future__ import annotations

import argparse
import json

from smolbook.data.build import prepare
from smolbook.data.cards import write_cards


def _prepare(args: argparse.Namespace) -> int:
    data = prepare(args.scale, args.output_dir, seed=args.seed)
    print(json.dumps({"root": str(data.root), "from_cache": data.from_cache, "sizes": data.sizes(),
                      "seconds": data.manifest.get("seconds")}, indent=2))
    return 0


def _cards(args: argparse.Namespace) -> int:
    paths = write_cards(args.out)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``smolbook data prepare`` and ``smolbook data cards``."""
    p = subparsers.add_parser("data", help="corpus, tokenizer and data cards")
    sub = p.add_subparsers(dest="data_command", required=True)
    pp = sub.add_parser("prepare", help="load-or-build corpus + tokenizer under OUTPUT_DIR/data")
    pp.add_argument("--scale", default="tiny")
    pp.add_argument("--output-dir", default="runs/tiny")
    pp.add_argument("--seed", type=int, default=0)
    pp.set_defaults(func=_prepare)
    pc = sub.add_parser("cards", help="regenerate data_cards/ from the recipe")
    pc.add_argument("--out", default="data_cards")
    pc.set_defaults(func=_cards)
