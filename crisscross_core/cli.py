"""`crisscross <command>`: one command line over the kit's modules.

Each subcommand lives in its own module, which provides `add_arguments(parser)` and
`run(args) -> int`; modules are imported only when their command runs, so a missing optional
extra (faiss, submitit, ...) only affects the commands that need it.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "pretrain": ("crisscross_core.train", "pretrain CrissCross (train(cfg)); resumes from run_dir"),
    "demo": ("crisscross_core.demo", "build the embedded demo data, pretrain tiny_cpu, evaluate, report"),
    "manifest": ("crisscross_core.data.cli", "build / validate dataset manifests"),
    "prepare": ("crisscross_core.data.cli", "transcode a dataset for fast decoding"),
    "evaluate": ("crisscross_core.evaluate.cli", "run a downstream protocol and write its JSON"),
    "embed": ("crisscross_core.evaluate.embed", "embed a folder / manifest / files with any weights (resumable)"),
    "submit": ("crisscross_core.launch", "submit pretraining to Slurm (or locally) with submitit"),
    "sweep": ("crisscross_core.sweep", "a grid of pretraining runs as one Slurm job array, read out and ranked"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="crisscross", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    if argv[0] not in COMMANDS:
        from .config import did_you_mean
        print(f"crisscross: error: unknown command {argv[0]!r}{did_you_mean(argv[0], COMMANDS)}; "
              f"commands: {', '.join(COMMANDS)} (crisscross --help)", file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    cmd = argparse.ArgumentParser(prog=f"crisscross {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd)
    args = cmd.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except Exception as exc:  # a clean one-line error for bad input; a traceback for bugs
        if isinstance(exc, _input_errors()):
            print(f"crisscross {name}: error: {exc}", file=sys.stderr)
            return 2
        raise


def _input_errors() -> tuple:
    """The kit's errors about the user's input (config, manifest, media, checkpoint, cluster profile);
    their messages name the key or file and say what would fix it."""
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data.datasets import DataError
    from .data.decode import DecodeError
    from .data.manifest import ManifestError
    from .launch import LaunchError
    from .runlock import RunLockedError
    from .train import NonFiniteLossError
    return (ConfigError, FileNotFoundError, CheckpointError, DataError, DecodeError, ManifestError,
            LaunchError, NonFiniteLossError, RunLockedError)


if __name__ == "__main__":
    raise SystemExit(main())
