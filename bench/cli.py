"""Command-line entry point: `python -m bench <command>` or `bench <command>`.

Holds no logic. Each command lives in the package it belongs to, as a module exposing
`add_arguments(parser)` and `run(args) -> int`; this file only maps names to those modules and imports a
module when its command is used, so `bench env` works even where a heavier package cannot import. Bad
input from any command (a `bench.usage.UsageError`) becomes one line and exit 2 here, in one place.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from types import ModuleType

from bench.usage import EXIT_USAGE, UsageError, unknown


@dataclass(frozen=True)
class Command:
    """A `bench` command: the module that parses and runs it (`add_arguments`, `run`), its one-line help,
    and the pages of the repository's docs/ that hold its reference (shown under its --help)."""

    module: str
    help: str
    docs: tuple[str, ...]


COMMANDS: dict[str, Command] = {
    "run": Command("bench.sweep.driver.command", "run a sweep (preset or TOML config) and write results",
                ("docs/sweeps.md", "docs/measurement.md", "docs/runtimes.md", "docs/int8.md", "docs/ray.md")),
    "report": Command("bench.report.command", "write figures and tables for result files",
                ("docs/reports.md",)),
    "compare": Command("bench.compare.command", "compare two result sets: verdicts and exit code",
                ("docs/regression.md",)),
    "baseline": Command("bench.compare.baseline", "promote a run to the regression baseline of its hardware",
                ("docs/regression.md",)),
    "invariants": Command("bench.models.invariants", "check (or --write) every model's params, MACs, op counts and fold error",
                ("docs/regression.md",)),
    "profile": Command("bench.profile.command", "capture a torch.profiler trace and a kernel summary for one cell",
                ("docs/reports.md",)),
    "env": Command("bench.measure.env", "print the environment fingerprint and preflight checks",
                ("docs/measurement.md",)),
    "models": Command("bench.models.command", "list registered models with params, MACs and paper figures",
                ("docs/models.md",)),
    "verify": Command("bench.parity.command", "check deploy form == training form for blocks and models; timm: parity audit",
                ("docs/models.md", "docs/reparameterization.md")),
    "gpu-check": Command("bench.gpucheck.command", "validate every CUDA path on a new GPU in minutes; writes summary.md",
                ("docs/gpu-check.md",)),
    "quant": Command("bench.quant.command", "deploy kernel range and int8 error of both forms per network; a figure",
                ("docs/int8.md",)),
    "export": Command("bench.export.command", "export a model's deploy (or training) form: ONNX, TorchScript, state dict",
                ("docs/own-models.md",)),
}


def _epilog(command: str) -> str:
    return "reference, in the repository: " + ", ".join(COMMANDS[command].docs)


def _load(command: str) -> ModuleType:
    return importlib.import_module(COMMANDS[command].module)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0],
                                     epilog="start with README.md; the reference is docs/, one page per topic "
                                            "(`bench COMMAND --help` names its pages)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return parser


EXIT_INTERRUPTED = 130
"""Ctrl-C: 128 + SIGINT, what a shell reports for a process Ctrl-C stopped."""


def main(argv: list[str] | None = None) -> int:
    """Run one command; Ctrl-C before a command handles it itself (while its modules import) is one line
    and exit 130, never a traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("\nbench: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        build_parser().print_help()
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"bench: {unknown('command', command, COMMANDS)}", file=sys.stderr)
        return EXIT_USAGE
    module = _load(command)
    parser = argparse.ArgumentParser(prog=f"bench {command}", description=COMMANDS[command].help,
                                     epilog=_epilog(command))
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except UsageError as exc:
        print(f"bench {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
