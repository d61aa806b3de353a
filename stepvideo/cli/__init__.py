"""`stepvideo …`: the command line. Each verb lives in its own module in this package and exposes
`register(subparsers)`; handlers raise StepVideoError, which `main` turns into one line and an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from ..errors import StepVideoError

log = logging.getLogger("stepvideo")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument prints one line (what is allowed) and exits 2, without usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="stepvideo", description="Step-Video-T2V on one local GPU.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=OneLineParser)
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args) or 0)
    except StepVideoError as exc:
        sys.stderr.write(f"stepvideo: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("stepvideo: interrupted\n")
        return 130
