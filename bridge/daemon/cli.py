"""The ``naemon-bridge`` command. Each subcommand is a small function returning an exit code."""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from collections.abc import Sequence

from bridge import __version__
from bridge.config.model import DEFAULT_CONFIG_PATH, Config, ConfigError, LogConfig, load_config, parse_listen
from bridge.daemon.preflight import Finding, check, check_as_server_user

_DESCRIPTION = """\
Accept passive check results and other external commands over HTTP (op5 Monitor's POST /api/command/<COMMAND>,
Alignak WS's PATCH /host/<name>, NRDP's /nrdp and Icinga 2's POST /v1/actions/process-check-result) and the
classic NSCA 2.x protocol ([nsca], for send_nsca), and write them into a Naemon or Nagios command pipe, spooling
them on disk while the engine does not read. With [cluster]: an edge or a sink of a JetStream cluster."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="naemon-bridge", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve", help="run the daemon in the foreground",
        description="Run the bridge in the foreground, logging to stderr. SIGTERM or SIGINT stops it: requests "
                    "in flight finish, queued lines are written to the engine's pipe or the spool. SIGHUP re-reads "
                    "the config; a config with errors keeps the running one. Under systemd (Type=notify) it "
                    "reports READY=1, STATUS=, WATCHDOG=1 and STOPPING=1.")
    serve.add_argument("--config", "-c", default=str(DEFAULT_CONFIG_PATH), metavar="PATH",
                       help=f"the TOML config file (default: {DEFAULT_CONFIG_PATH})")
    serve.add_argument("--daemon", action="store_true",
                       help="detach from the terminal (classic daemon; needs --pidfile). Logs go to [log] target; "
                            "\"stderr\" becomes syslog, and with no syslog daemon on /dev/log it exits 1 before "
                            "detaching. Not needed under systemd.")
    serve.add_argument("--pidfile", metavar="PATH",
                       help="write the pid here, locked: a second instance on the same pidfile refuses to start; "
                            "removed at exit")
    # How the hub of [server] workers starts each worker; not for people.
    serve.add_argument("--worker-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--hub", help=argparse.SUPPRESS)
    serve.add_argument("--hub-pid", type=int, help=argparse.SUPPRESS)

    check = commands.add_parser(
        "check-config", help="validate a config file and exit",
        description="Check a config file as 'serve' does before it starts: the file (keys, types, password "
                    "hashes) and this machine, as server.user when set and run as root (the spool folder and "
                    "log.file can be written, syslog listens). Prints what is wrong (file, key, reason) and exits "
                    "1; else prints warnings (no users, engine files not there yet) and a summary, and exits 0.")
    check.add_argument("--config", "-c", default=str(DEFAULT_CONFIG_PATH), metavar="PATH",
                       help=f"the TOML config file (default: {DEFAULT_CONFIG_PATH})")

    demo = commands.add_parser(
        "demo", help="try the bridge with nothing else set up",
        description="Run the bridge on a working default with a sample user. When Debian's nagios4 is on the "
                    "PATH, a throwaway Nagios 4 with a sample passive host and service receives the results and "
                    "its log is shown; otherwise a demo command pipe shows every line the engine would receive. "
                    "Prints the URL, the credentials and curl lines to try. With --cluster: a small cluster instead "
                    "(README: Several engines and sites). Ctrl-C removes everything.")
    demo.add_argument("--listen", default="127.0.0.1:8888", metavar="HOST:PORT",
                      help="where to listen (default: 127.0.0.1:8888; port 0 picks a free one)")
    demo.add_argument("--no-nagios", action="store_true",
                      help="use the demo command pipe even when nagios4 is installed")
    demo.add_argument("--cluster", action="store_true",
                      help="a small cluster on this machine instead: three nats-server nodes (JetStream), two "
                           "engines with a sink beside each, and an edge listening on --listen (needs nats-server)")

    # The drop-in clients parse their own options (update-status.py's and send_nsca's), exit like plugins.
    commands.add_parser("submit", add_help=False, help="submit one result, as op5's update-status.py does",
                        description="see: naemon-bridge submit --help")
    commands.add_parser("send", add_help=False, help="submit results read from stdin, as send_nsca does",
                        description="see: naemon-bridge send --help")

    unit = commands.add_parser(
        "systemd-unit", help="print a systemd unit for this installation",
        description="Print systemd/naemon-bridge.service for this installation: ExecStartPre= and ExecStart= run "
                    "this very naemon-bridge (a virtualenv's bin/naemon-bridge, or this Python with -m bridge), "
                    "with the config, user and group given. Redirect it into "
                    "/etc/systemd/system/naemon-bridge.service.")
    unit.add_argument("--config", "-c", default=str(DEFAULT_CONFIG_PATH), metavar="PATH",
                      help=f"the config file the unit passes to serve (default: {DEFAULT_CONFIG_PATH})")
    unit.add_argument("--user", default="naemon-bridge", metavar="USER",
                      help="User= of the service (default: naemon-bridge)")
    unit.add_argument("--group", default="naemon", metavar="GROUP",
                      help="Group= of the service: the group that may write the engine's pipe, \"naemon\" for "
                           "Naemon's packages, \"www-data\" for Debian's nagios4 (default: naemon)")

    importer = commands.add_parser(
        "import-nsca-config", help="print the [nsca] section for a classic nsca.cfg",
        description="Read a classic nsca 2.x config (Debian's /etc/nsca.cfg) and print the equivalent [nsca] "
                    "section (port, password, method, packet age) and [engine] command_file, with nsca's names "
                    "beside ours, to paste into naemon-bridge.toml. Exits 1 for a method the bridge cannot "
                    "decrypt.")
    importer.add_argument("nsca_cfg", metavar="NSCA_CFG", help="the nsca.cfg to read, e.g. /etc/nsca.cfg")

    hasher = commands.add_parser(
        "hash-password", help="print a password hash for the config",
        description="Read a password from stdin (prompting without echo on a terminal) and print an argon2 hash "
                    "to use as password_hash in a [[users]] entry.")
    del hasher
    return parser


def _serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from dataclasses import replace
    from pathlib import Path

    from bridge.daemon.daemonize import bind, bind_workers, claim_pidfile, daemon_context, drop_privileges

    if args.daemon and not args.pidfile:
        parser.error("--daemon needs --pidfile PATH")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"naemon-bridge: {exc}", file=sys.stderr)
        return 1
    if args.worker_fd is not None:
        return _serve_worker(args, config)
    lock = claim_pidfile(Path(args.pidfile)) if args.pidfile else None  # before detaching: errors are seen
    sockets = bind_workers(config.server) if config.server.workers > 1 else [bind(config.server)]
    # Import what the daemon runs while still privileged: the new user may not be able to read every folder.
    import concurrent.futures.thread  # noqa: F401  (asyncio.to_thread's pool, imported lazily otherwise)

    import bridge.daemon.reload  # noqa: F401
    import bridge.daemon.server  # noqa: F401
    import bridge.daemon.workers  # noqa: F401
    import bridge.http.app  # noqa: F401
    import bridge.intake  # noqa: F401  (every dialect and what it imports: decimal, xml …)
    from bridge.daemon.server import event_loop_factory

    event_loop_factory()  # imports uvloop now: the loop must not depend on what server.user may read
    drop_privileges(config.server.user, config.server.group)
    log_config = config.log
    if args.daemon and log_config.target == "stderr":
        print("naemon-bridge: --daemon: logging to syslog (set [log] target to choose)", file=sys.stderr)
        log_config = replace(log_config, target="syslog")
    try:
        findings = check(config, log_config)  # as the account serve runs as, before detaching: errors are seen
    except ConfigError as exc:
        print(f"naemon-bridge: {exc}", file=sys.stderr)
        return 1
    if not args.daemon:
        if lock is not None:
            lock.acquire()
        try:
            return _serve_forever(args, config, log_config, sockets, findings)
        finally:
            if lock is not None:
                lock.release()
    assert lock is not None
    with daemon_context(lock, [sock.fileno() for sock in sockets]):
        return _serve_forever(args, config, log_config, sockets, findings)


def _serve_forever(args: argparse.Namespace, config: Config, log_config: LogConfig,
                   sockets: list[socket.socket], findings: list[Finding]) -> int:
    import logging
    from pathlib import Path

    from bridge.daemon.reload import reload_config
    from bridge.daemon.server import run, run_event_loop, setup_logging
    from bridge.daemon.workers import WorkerPool, hub_socket
    from bridge.http.app import make_app
    from bridge.intake import DIALECTS

    log_file = setup_logging(log_config)
    for finding in findings:
        logging.getLogger("naemon_bridge").log(finding.level, "%s", finding.text)
    if config.cluster is not None:
        from bridge.daemon.cluster_roles import make_cluster_app
        app = make_cluster_app(config, DIALECTS)
    else:
        app = make_app(config, DIALECTS)
    pool = None
    if config.server.workers > 1:
        pool = WorkerPool(app, Path(args.config).resolve(), sockets, hub_socket(config))
    run_event_loop(run(app, config, reload=lambda: reload_config(app, args.config),
                       sock=sockets[0] if pool is None else None, pool=pool,
                       on_usr1=log_file.reopen if log_file else None))
    return 0


def _serve_worker(args: argparse.Namespace, config: Config) -> int:
    """One worker of ``[server] workers``, started by the hub with its listening socket."""
    from pathlib import Path

    from bridge.daemon.server import run, run_event_loop, setup_logging
    from bridge.daemon.systemd import Notifier
    from bridge.daemon.workers import make_worker_app, reload_worker
    from bridge.intake import DIALECTS

    log_file = setup_logging(config.log)
    sock = socket.socket(fileno=args.worker_fd)
    app = make_worker_app(config, Path(args.hub), args.hub_pid, DIALECTS)
    run_event_loop(run(app, config, reload=lambda: reload_worker(app, args.config), sock=sock,
                       notifier=Notifier({}), on_usr1=log_file.reopen if log_file else None))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    import logging

    try:
        config = load_config(args.config)
        findings = check_as_server_user(config)
    except ConfigError as exc:
        print(f"naemon-bridge: {exc}", file=sys.stderr)
        return 1
    for finding in findings:
        kind = "warning" if finding.level >= logging.WARNING else "note"
        print(f"naemon-bridge: {kind}: {finding.text}", file=sys.stderr)
    workers = f", {config.server.workers} workers" if config.server.workers > 1 else ""
    cluster = config.cluster
    engine = f"cluster edge, stream {cluster.stream}" if cluster is not None and cluster.role == "edge" else \
        f"engine {config.engine.kind} ({config.engine.command_file})" + \
        (f", cluster sink of {cluster.engine}, stream {cluster.stream}" if cluster is not None else "")
    nsca = f", nsca {config.nsca.listen} as {config.nsca.user}" if config.nsca.listen is not None else ""
    print(f"{config.source}: OK — listen {config.server.listen}{workers}{nsca}, {engine}, "
          f"spool {config.spool.directory}, "
          f"{len(config.users)} user(s)")
    return 0


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from bridge.daemon.demo import run_demo

    try:
        listen = parse_listen(args.listen)
    except ValueError as exc:
        parser.error(f"--listen {exc}")
    if args.cluster:
        from bridge.daemon.cluster_demo import run_cluster_demo
        return run_cluster_demo(listen, use_nagios=not args.no_nagios)
    return run_demo(listen, use_nagios=not args.no_nagios)


def _systemd_unit(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import re
    from pathlib import Path

    from bridge.daemon.systemd_unit import HIDDEN_HOMES, render_unit, this_executable

    for option, name in (("--user", args.user), ("--group", args.group)):
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            parser.error(f"{option} must be a user or group name, not {name!r}")
    executable, program = this_executable()
    hidden = next((home for home in HIDDEN_HOMES if program.is_relative_to(home)), None)
    if hidden is not None:
        print(f"naemon-bridge: warning: {program} is under {hidden}, which the unit's ProtectHome=yes hides "
              "from the service: install into a virtualenv outside it (e.g. python3 -m venv /opt/naemon-bridge)",
              file=sys.stderr)
    print(render_unit(executable=executable, config=Path(args.config).absolute(), user=args.user,
                      group=args.group), end="")
    return 0


def _hash_password() -> int:
    from bridge.http.credentials import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("naemon-bridge: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("naemon-bridge: empty password", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def _import_nsca_config(args: argparse.Namespace) -> int:
    from bridge.config.nsca_import import nsca_section

    try:
        with open(args.nsca_cfg, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
        print(nsca_section(text, args.nsca_cfg), end="")
    except OSError as exc:
        print(f"naemon-bridge: cannot read {args.nsca_cfg}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"naemon-bridge: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("submit", "send"):
        from bridge.daemon.clients import send_main, submit_main

        return (submit_main if argv[0] == "submit" else send_main)(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args, parser)
    if args.command == "check-config":
        return _check_config(args)
    if args.command == "demo":
        return _demo(args, parser)
    if args.command == "systemd-unit":
        return _systemd_unit(args, parser)
    if args.command == "import-nsca-config":
        return _import_nsca_config(args)
    return _hash_password()
