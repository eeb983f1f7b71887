"""The `metabnn` console command.

Each subcommand lives next to the code it drives and exposes two functions:
`add_parser(subparsers)` and `run(args) -> int`. This file only wires them up
and turns user errors (MetabnnError) into one line and an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from metabnn import __version__
from metabnn.errors import MetabnnError

# (module, subcommand) in the order `metabnn --help` lists them: the data flow.
COMMANDS = [
    "metabnn.train.cli",
    "metabnn.summary",
    "metabnn.export.cli",
    "metabnn.verify_cli",
    "metabnn.fpga.cli",
    "metabnn.demo",
]


class _Parser(argparse.ArgumentParser):
    """Bad options: one line naming the problem and where help is, exit code 2 (no usage dump).
    Subcommand parsers are made from this class too (argparse's add_subparsers default)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def run_main(prog: str, work, argv) -> int:
    """Run `work(argv)` as a module's command (`python -m metabnn.<study>`): a user error is one line naming
    `prog`, and its exit code."""
    try:
        return work(argv)
    except MetabnnError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="metabnn",
        description="Metaplastic binarized neural networks: train, export, verify, "
        "and keep learning on the device.",
    )
    parser.add_argument("--version", action="version", version=f"metabnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except MetabnnError as e:
        print(f"metabnn {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"metabnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not a user error: still one line unless asked for the traceback
        if os.environ.get("METABNN_DEBUG"):
            raise
        print(f"metabnn {args.command}: internal error: {type(e).__name__}: {e} "
              "(set METABNN_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
