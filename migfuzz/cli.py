"""``migfuzz``: one entry point, one module per command group under ``migfuzz.commands``.

Each command module defines ``register(subparsers)``, adding its subcommands with a
``func(args) -> int`` default. Errors a user can fix (bad input, unknown names, a schedule
that diverged) are one line on stderr and exit status 2; no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import commands

EXIT_OK, EXIT_FOUND, EXIT_ERROR, EXIT_NONDETERMINISTIC = 0, 1, 2, 3


class UsageError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from migfuzz.corpus.input import InputError
    from migfuzz.fuzzer.scenario import ScenarioError
    from migfuzz.fuzzer.scheduler.controlled import Diverged
    from migfuzz.fuzzer.kernel.variants import VariantError
    errs: list[type[BaseException]] = [UsageError, InputError, ScenarioError, Diverged,
                                       VariantError]
    for mod in _command_modules():
        errs.extend(getattr(mod, "USER_ERRORS", ()))
    return tuple(errs)


def _command_modules():
    return [importlib.import_module(f"{commands.__name__}.{m.name}")
            for m in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name)]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose subcommands report an argument they do not know themselves,
    with their own usage line. (argparse leaves unknown arguments of a subcommand to the
    top-level parser, whose error shows the top-level usage: 'migfuzz [-h] COMMAND'.)
    Subparsers inherit the class, so this holds at every level (``corpus export``)."""

    def parse_known_args(self, args=None, namespace=None):
        ns, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error("unrecognized arguments: " + " ".join(extra))
        return ns, extra


def version() -> str:
    """The installed package's version and the engine version (which stored inputs
    carry: a schedule replays exactly on the engine version that wrote it)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    from migfuzz.fuzzer import ENGINE_VERSION
    try:
        v = dist_version("migfuzz")
    except PackageNotFoundError:
        v = "unknown (not installed)"
    return f"migfuzz {v} (engine version {ENGINE_VERSION})"


# Subcommands where --json has no meaning; every other one takes it (a test walks the
# parser and holds the two to this list).
NO_JSON = {
    "dashboard": "a web server: it prints no result, its pages and /metrics are the output",
}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="migfuzz",
        description="Find concurrency bugs in the Linux kernel's migrate_vma with an "
                    "interleaving-controlled model of v5.15, v5.16, v6.1, the 6.1.192 and "
                    "6.12.117 LTS releases and mainline ('migfuzz variants'), and take "
                    "its findings to real kernels in QEMU ('migfuzz kernel').",
        epilog="Exit status: 0 ok / nothing found, 1 finding (or replay mismatch), "
               "2 usage or input error, 3 a nondeterministic execution "
               "(--check-determinism). Run 'migfuzz COMMAND --help' for each command.")
    p.add_argument("--version", action="version", version=version(),
                   help="print the migfuzz version and the engine version, and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        mod.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    errors = _user_errors()
    from migfuzz.fuzzer.execute import Nondeterministic
    try:
        return args.func(args)
    except errors as e:
        print(f"migfuzz: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except Nondeterministic as e:       # a bug in the engine, not in the user's input
        print(f"migfuzz: {e}", file=sys.stderr)
        return EXIT_NONDETERMINISTIC
    except KeyboardInterrupt:
        print("migfuzz: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
