"""The `gridactor` command: `run`, `config check` and `user …`.

Flags follow Infinispan's ``server.sh`` so that scripts written for it keep working:
``-c`` configuration, ``-b`` bind address, ``-p`` port of the default endpoint, ``-o``
port offset, ``-Dname=value`` properties for ``${name}`` expansion.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from gridactor import __version__
from gridactor.errors import ConfigError

DEFAULT_CONFIG = "config/infinispan.xml"


def _properties(pairs: Sequence[str] | None) -> dict[str, str]:
    props: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not name:
            raise SystemExit(f"gridactor: -D needs name=value, got {pair!r}")
        props[name] = value if sep else "true"
    return props


def _resolve_config(path: str) -> str:
    # Infinispan resolves -c against server/conf; we accept a path, or a name in config/.
    if os.path.exists(path):
        return path
    candidate = os.path.join("config", path)
    return candidate if os.path.exists(candidate) else path


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-5s [%(name)s] %(message)s",
        stream=sys.stderr,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridactor", description="Infinispan-compatible data grid server")
    parser.add_argument("--version", action="version", version=f"gridactor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the server")
    run.add_argument("-c", "--server-config", dest="config", default=DEFAULT_CONFIG)
    run.add_argument("-b", "--bind-address", dest="bind_address")
    run.add_argument("-p", "--port", type=int, help="port of the default endpoint")
    run.add_argument("-o", "--port-offset", type=int)
    run.add_argument("-D", dest="properties", action="append", metavar="NAME=VALUE")
    run.add_argument(
        "--shards", type=int, help="cache shard processes (default: one per core, at least 2; 0 = in-process)"
    )
    run.add_argument(
        "--listeners",
        type=int,
        default=1,
        help="processes serving the endpoints' port together (SO_REUSEPORT; default 1)",
    )
    run.add_argument("--grace", type=float, default=5.0, help="seconds open connections get at shutdown")
    run.add_argument("--log-level", default=os.environ.get("GRIDACTOR_LOG_LEVEL", "info"))

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="load and validate a configuration")
    check.add_argument("file")
    check.add_argument("--strict", action="store_true", help="missing referenced files are errors")
    check.add_argument("-D", dest="properties", action="append", metavar="NAME=VALUE")

    from gridactor.security.user_tool import add_user_subcommands

    add_user_subcommands(commands)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from gridactor.server.app import RunOptions, load_and_run

    _setup_logging(args.log_level)
    if args.shards is not None and args.shards < 0:
        print("gridactor: --shards must be 0 or more", file=sys.stderr)
        return 2
    if args.listeners < 1:
        print("gridactor: --listeners must be 1 or more", file=sys.stderr)
        return 2
    if args.listeners > 1 and args.shards == 0:
        print("gridactor: --listeners above 1 needs shard processes (not --shards 0)", file=sys.stderr)
        return 2
    options = RunOptions(
        bind_address=args.bind_address,
        port=args.port,
        port_offset=args.port_offset,
        shards=args.shards,
        grace_s=args.grace,
        properties=_properties(args.properties),
        listeners=args.listeners,
    )
    try:
        load_and_run(_resolve_config(args.config), options)
    except ConfigError as exc:
        print(f"gridactor: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gridactor: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from gridactor.config.check import check_config
    from gridactor.config.loader import load_config

    try:
        config = load_config(args.file, _properties(args.properties))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    report = check_config(config, strict=args.strict)
    for line in report.summary:
        print(line)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in report.errors:
        print(str(error), file=sys.stderr)
    return 1 if report.errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "config" and args.config_command == "check":
        return cmd_config_check(args)
    if args.command == "user":
        from gridactor.security.user_tool import run_user_command

        return run_user_command(args)
    raise AssertionError(f"unhandled command {args.command}")
