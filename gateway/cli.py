"""The `trackgate` command.

Each subcommand is a (name, add_arguments) pair in SUBCOMMANDS: `add_arguments(parser)` declares
its flags and sets `handler=<function(args) -> exit code>` with `parser.set_defaults`; the first
line of its docstring is the subcommand's help. `server` registers exactly the way a new one would.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import gateway
from gateway import cli_audit, cli_certs, cli_db, cli_gc, cli_grants, cli_import, cli_roles, cli_tokens, cli_users
from gateway import config as configuration
from gateway.config_security import open_listener_problems

AddArguments = Callable[[argparse.ArgumentParser], None]

# Flags spelled the way `mlflow server` spells them; every other setting gets --<name> too.
_SHORT_FLAGS = {"port": ["-p"], "workers": ["-w"]}


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Run the tracking server: the tracking core behind the gateway, on one public port."""
    # SUPPRESS defaults: only flags actually given appear in the namespace, so environment and
    # config file values are not overridden by argparse's defaults.
    for setting in configuration.SETTINGS:
        flag = "--" + setting.name.replace("_", "-")
        help_text = f"{setting.help} Environment: {', '.join(setting.env_names)}."
        if setting.kind is bool:
            # --serve-artifacts / --no-serve-artifacts, --artifacts-only / --no-artifacts-only
            parser.add_argument(
                flag,
                dest=setting.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            # Values stay strings here: config.load converts them so that every bad value is
            # reported together with every other problem instead of argparse stopping at the first.
            parser.add_argument(
                flag,
                *_SHORT_FLAGS.get(setting.name, []),
                dest=setting.name,
                default=argparse.SUPPRESS,
                metavar=setting.name.upper(),
                help=help_text,
            )
    parser.add_argument("--config", metavar="FILE", dest="config_file", help="TOML file with settings.")
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="Print the effective configuration (secrets masked) and exit: 0 if valid, 2 if not.",
    )
    parser.set_defaults(handler=run_server)


def load_config(args: argparse.Namespace) -> configuration.Config | None:
    """The validated config from the command line, environment and file; None after printing problems."""
    flags = {s.name: getattr(args, s.name) for s in configuration.SETTINGS if hasattr(args, s.name)}
    try:
        config = configuration.load(flags, config_file=args.config_file)
    except configuration.ConfigError as exc:
        print("trackgate: configuration problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None
    for warning in config.warnings:
        print(f"trackgate: {warning}", file=sys.stderr)
    return config


def run_server(args: argparse.Namespace) -> int:
    config = load_config(args)
    if config is None:
        return 2
    if problems := open_listener_problems(config):
        print("trackgate: configuration problems:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if args.check_config:
        print("\n".join(configuration.describe(config)))
        return 0
    from gateway.server import run  # lazy: --check-config and --help stay fast

    return run(config)


# Every subcommand, in help order. A new one is one more (name, add_arguments) row.
SUBCOMMANDS: list[tuple[str, AddArguments]] = [
    ("server", add_server_arguments),
    ("db", cli_db.add_db_arguments),
    ("gc", cli_gc.add_gc_arguments),
    ("users", cli_users.add_users_arguments),
    ("tokens", cli_tokens.add_tokens_arguments),
    ("grants", cli_grants.add_grants_arguments),
    ("roles", cli_roles.add_roles_arguments),
    ("audit", cli_audit.add_audit_arguments),
    ("certs", cli_certs.add_certs_arguments),
    ("import-mlflow", cli_import.add_import_arguments),
]


def version_text() -> str:
    return f"trackgate {gateway.__version__} (MLflow API {gateway.MLFLOW_API_VERSION})"


def build_parser(subcommands: Sequence[tuple[str, AddArguments]] = SUBCOMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackgate", description="An MLflow-compatible tracking server with its auth gateway built in."
    )
    parser.add_argument("--version", action="version", version=version_text())
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, add_arguments in subcommands:
        summary = (add_arguments.__doc__ or "").strip().splitlines()[0] if add_arguments.__doc__ else None
        add_arguments(commands.add_parser(name, help=summary, description=summary))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
