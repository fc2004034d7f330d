"""Drop-in clients: ``naemon-bridge submit`` for op5's ``update-status.py`` and ``naemon-bridge send`` for
``send_nsca``. They speak to a bridge over HTTP(S) with the standard library's client; they answer like the
programs they replace (one line, plugin exit codes), so scripts switch by changing the command name.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import socket
import ssl
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlparse, urlunparse

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
SERVICE_STATES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
HOST_STATES = {"UP": 0, "DOWN": 1, "UNREACHABLE": 2}
UPDATE_STATUS_VERSION = "1.1"  # what update-status.py -v prints; scripts may compare it
SEND_BATCH = 1000
SEND_PORT = 8888  # send's -p default: the bridge's default listening port


class _PluginArgumentParser(argparse.ArgumentParser):
    """Usage errors exit 3 (UNKNOWN), as monitoring plugins do, not argparse's 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(UNKNOWN, f"{self.prog}: error: {message}\n")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, object]


def _post(url: str, payload: object, user: str, password: str, *, timeout: float, insecure: bool) -> Answer:
    """POST JSON with basic auth; an HTTP error status is an Answer, a transport failure raises OSError."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context()
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {}
    return Answer(status, body if isinstance(body, dict) else {})


def _cause(exc: BaseException) -> BaseException:
    return exc.reason if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException) else exc


def _endpoint(url: str) -> tuple[str, int | str]:
    """The host and port a URL connects to (the scheme's port when it names none); a bad port is kept as text,
    for messages."""
    parsed = urlparse(url)
    try:
        port: int | str = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        port = parsed.netloc.rpartition(":")[2]
    return parsed.hostname or "", port


def _netloc(host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host else host
    return host if port is None else f"{host}:{port}"


def _answers_plain_http(url: str, timeout: float) -> bool:
    """After a TLS handshake failed: does the server at the URL's host and port speak HTTP without TLS? (The
    bridge listens so unless server.tls_cert is set.) One bare HEAD, without credentials, tells."""
    host, port = _endpoint(url)
    if not isinstance(port, int):
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
            return connection.makefile("rb").read(5) == b"HTTP/"
    except OSError:
        return False


def _plain_url(url: str) -> str:
    """The http:// URL to the same host and port as a https:// one."""
    host, port = _endpoint(url)
    return urlunparse(urlparse(url)._replace(scheme="http", netloc=_netloc(host, port if isinstance(port, int)
                                                                             else None)))


# --- submit: update-status.py ---------------------------------------------------------------------------------------

def _submit_parser() -> argparse.ArgumentParser:
    parser = _PluginArgumentParser(
        prog="naemon-bridge submit",
        description="Submit one passive result, as op5's update-status.py does: the same options, one-line "
                    "answers and plugin exit codes (0 OK, 2 CRITICAL, 3 UNKNOWN). Without -S it submits a host "
                    "result. The password may come from --password-file or NAEMON_BRIDGE_PASSWORD instead of -p.")
    parser.add_argument("-M", "--monhost", help="the bridge's host name; the URL is https://MONHOST:PORT/PATH "
                                                "(always HTTPS, as update-status.py does)")
    parser.add_argument("--url", help="a base URL instead of -M/-r, e.g. http://127.0.0.1:8888 for a bridge "
                                      "without TLS (its default); -P still names the path")
    parser.add_argument("-u", "--username", required=True)
    parser.add_argument("-p", "--password")
    parser.add_argument("--password-file", type=Path, help="read the password from the first line of this file")
    parser.add_argument("-H", "--host", required=True, help="the host the result is for")
    parser.add_argument("-S", "--service", help="the service the result is for (none: a host result)")
    parser.add_argument("-s", "--status", required=True,
                        help="OK|WARNING|CRITICAL|UNKNOWN for a service, UP|DOWN|UNREACHABLE for a host "
                             "(case-sensitive), or the number")
    parser.add_argument("-m", "--servicemsg", required=True, help="the plugin output")
    parser.add_argument("--perfdata", help="performance data, appended after '|'")
    parser.add_argument("-i", "--insecure", action="store_true", help="do not verify the TLS certificate")
    parser.add_argument("-P", "--path", help="default: /api/command/PROCESS_SERVICE_CHECK_RESULT "
                                             "(PROCESS_HOST_CHECK_RESULT without -S)")
    parser.add_argument("-r", "--port", type=int, help="the port for -M (default: 443)")
    parser.add_argument("-t", "--timeout", type=float, default=15.0, help="seconds (default: 15)")
    parser.add_argument("-v", "--version", action="version", version=UPDATE_STATUS_VERSION)
    return parser


def _password(parser: argparse.ArgumentParser, given: str | None, file: Path | None) -> str:
    if given is not None:
        return given
    if file is not None:
        try:
            lines = file.read_text().splitlines()
        except OSError as exc:
            parser.error(f"cannot read --password-file {file}: {exc.strerror}")
        return lines[0] if lines else ""
    from_env = os.environ.get("NAEMON_BRIDGE_PASSWORD")
    if from_env is None:
        parser.error("a password is required: -p, --password-file or NAEMON_BRIDGE_PASSWORD")
    return from_env


def submit_main(argv: Sequence[str] | None = None) -> int:
    parser = _submit_parser()
    args = parser.parse_args(argv)
    if not args.monhost and not args.url:
        parser.error("the following arguments are required: -M/--monhost (or --url)")
    if args.url and (args.monhost or args.port is not None):
        parser.error("give the bridge as --url or as -M/-r, not both")
    password = _password(parser, args.password, args.password_file)
    states = HOST_STATES if args.service is None else SERVICE_STATES
    if args.status in states:
        code = states[args.status]
    elif args.status.isdigit() and int(args.status) in states.values():
        code = int(args.status)
    else:
        parser.error(f"argument -s/--status: invalid choice: {args.status!r} (choose from "
                     f"{', '.join(states)} or {min(states.values())}-{max(states.values())})")
    command = "PROCESS_HOST_CHECK_RESULT" if args.service is None else "PROCESS_SERVICE_CHECK_RESULT"
    path = args.path or f"/api/command/{command}"
    base = args.url.rstrip("/") if args.url else \
        f"https://{_netloc(args.monhost, args.port if args.port is not None else 443)}"
    target = args.url or args.monhost
    output = f"{args.servicemsg}|{args.perfdata}" if args.perfdata else args.servicemsg
    payload = {"host_name": args.host, "status_code": str(code), "plugin_output": output}
    if args.service is not None:
        payload["service_description"] = args.service
    what = f'Host "{args.host}"' if args.service is None else f'Service "{args.service}" on host "{args.host}"'
    try:
        answer = _post(base + path, payload, args.username, password, timeout=args.timeout, insecure=args.insecure)
    except (OSError, ValueError) as exc:
        cause = _cause(exc)
        if isinstance(cause, TimeoutError | socket.timeout):
            return _say(CRITICAL, f'CRITICAL - Connection to host "{target}" timed out')
        if isinstance(cause, ssl.SSLError):
            host, port = _endpoint(base)
            if not isinstance(cause, ssl.SSLCertVerificationError) and _answers_plain_http(base, args.timeout):
                why = " (-M always means https)" if args.monhost else ""
                return _say(CRITICAL, f"CRITICAL - TLS handshake failed: the server at {_netloc(host, None)} port "
                                      f"{port} answered plain HTTP{why}; reach it with --url {_plain_url(base)}, "
                                      "or give the bridge server.tls_cert")
            if args.insecure and not isinstance(cause, ssl.SSLCertVerificationError):
                return _say(CRITICAL, f'CRITICAL - TLS handshake with host "{target}" on port {port} failed: {cause}')
            return _say(CRITICAL, 'CRITICAL - SSL certificate validation error - use "--insecure" to disable '
                                  'verification')
        if isinstance(cause, OSError):
            return _say(CRITICAL, f'CRITICAL - Failed to connect to host "{target}" on port {_endpoint(base)[1]}')
        return _say(UNKNOWN, f'UNKNOWN - Unexpected exception: "{cause}"')
    detail = f" ({answer.body['full_error']})" if answer.body.get("full_error") else ""
    if answer.status == 200:
        return _say(OK, f"OK - {what} was updated successfully")
    if answer.status == 400:
        service = f' or service "{args.service}"' if args.service is not None else ""
        return _say(CRITICAL, f'CRITICAL - Host "{args.host}"{service} was not found, or the request was '
                              f'refused. Please check your spelling and capitalization{detail}')
    if answer.status == 401:
        return _say(CRITICAL, "CRITICAL - Username, password and/or the user's privileges were not accepted by "
                              f"server{detail}")
    if answer.status == 404:
        return _say(CRITICAL, f'CRITICAL - The requested URL "{path}" was not found')
    return _say(UNKNOWN, f'UNKNOWN - Unexpected HTTP status code: "{answer.status}"{detail}')


def _say(code: int, line: str) -> int:
    print(line)
    return code


# --- send: send_nsca ------------------------------------------------------------------------------------------------

def _send_parser() -> argparse.ArgumentParser:
    parser = _PluginArgumentParser(
        prog="naemon-bridge send",
        description="Read passive results from stdin, as send_nsca does — 'host<TAB>service<TAB>code<TAB>output' "
                    "or 'host<TAB>code<TAB>output' a line — and submit them to the bridge in batches. Prints "
                    "'N data packet(s) sent to host successfully.' As with NSCA and Nagios, '\\n' in the output "
                    "starts long output and '\\\\' is a backslash. Input holding ETB (\\x17, send_nsca 2.9+'s block "
                    "mode) is split into results only at ETB: newlines inside a block are lines of multi-line "
                    "output, backslashes are kept as they are. Credentials: the client config (-c, TOML: url, "
                    "user, password or token) or NAEMON_BRIDGE_URL, NAEMON_BRIDGE_USER, NAEMON_BRIDGE_PASSWORD, "
                    "NAEMON_BRIDGE_TOKEN.")
    parser.add_argument("-H", dest="host", help="the bridge's host: the URL is http://HOST:PORT, or the client "
                                                "config's url with this host (and its scheme)")
    parser.add_argument("-p", dest="port", type=int, help=f"the bridge's port (default: {SEND_PORT}, or the "
                                                          "port of the client config's url)")
    parser.add_argument("-to", dest="timeout", type=float, default=10.0,
                        help="seconds before a request times out (default: 10)")
    parser.add_argument("-d", dest="delimiter", default="\t", help="field delimiter (default: tab)")
    parser.add_argument("-c", dest="config", type=Path, help="client config file (TOML)")
    parser.add_argument("--url", help="the bridge's base URL, e.g. https://monitor:8888 (instead of -H/-p). "
                                      "Options on the command line win over the client config's url")
    parser.add_argument("-i", "--insecure", action="store_true", help="do not verify the TLS certificate")
    return parser


@dataclass(frozen=True, slots=True)
class ClientConfig:
    url: str | None
    user: str
    password: str


def load_client_config(parser: argparse.ArgumentParser, path: Path | None) -> ClientConfig:
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            parser.error(f"cannot read {path}: {exc.strerror}")
        except tomllib.TOMLDecodeError as exc:
            parser.error(f"{path}: not valid TOML: {exc}")
        unknown = sorted(set(data) - {"url", "user", "password", "token"})
        if unknown:
            parser.error(f"{path}: {unknown[0]}: unknown key (url, user, password, token)")

    def value(key: str) -> str | None:
        found = data.get(key, os.environ.get(f"NAEMON_BRIDGE_{key.upper()}"))
        return str(found) if found is not None else None

    token = value("token")
    if token:
        return ClientConfig(value("url"), token, "")
    user, password = value("user"), value("password")
    if not user or password is None:
        parser.error("credentials are required: user and password (or token) in the -c file or NAEMON_BRIDGE_* "
                     "variables")
    return ClientConfig(value("url"), user, password)


def _unescape(text: str) -> str:
    """NSCA hands output to the engine raw, and Nagios reads '\\n' and '\\\\' in it: keep that meaning."""
    out, i = [], 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair in ("\\n", "\\\\"):
            out.append("\n" if pair == "\\n" else "\\")
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


BLOCK_DELIMITER = "\x17"  # ETB: send_nsca 2.9+ ends each result ("set") with it


def parse_send_line(line: str, delimiter: str, *, block: bool = False) -> dict[str, object] | None:
    """One send_nsca input line (or, ``block``, one ETB-delimited set) as a batch result; None for one send_nsca
    would skip. A block's output is taken as it is, newlines and backslashes alike, as send_nsca 2.10 sends it."""
    unescape = (lambda text: text) if block else _unescape
    parts = (line.lstrip("\r\n").rstrip(" \t\r\n") if block else line.rstrip("\r\n")).split(delimiter, 3)
    if len(parts) == 4 and parts[2].strip().isdigit():
        host, service, code, output = parts
        return {"host_name": host, "service_description": service, "status_code": code.strip(),
                "plugin_output": unescape(output)}
    if len(parts) >= 3 and parts[1].strip().isdigit():
        return {"host_name": parts[0], "status_code": parts[1].strip(),
                "plugin_output": unescape(delimiter.join(parts[2:]))}
    return None


def send_url(parser: argparse.ArgumentParser, args: argparse.Namespace, configured: str | None) -> str:
    """The bridge's base URL. What the command line gives wins over the client config's (or the environment's)
    url: --url whole, or -H and -p each replacing their part of it (its scheme stays: https is not dropped)."""
    if args.url:
        if args.host is not None or args.port is not None:
            parser.error("give the bridge as --url or as -H/-p, not both")
        return str(args.url)
    if configured is None:
        if args.host is None:
            parser.error("the bridge is required: -H HOST (and -p PORT), --url, or url in the client config")
        return f"http://{_netloc(args.host, args.port if args.port is not None else SEND_PORT)}"
    if args.host is None and args.port is None:
        return configured
    parsed = urlparse(configured)
    host = _endpoint(configured)[0]
    try:
        given_port = parsed.port
    except ValueError:
        parser.error(f"the client config's url has a bad port: {configured}")
    port_part = args.port if args.port is not None else given_port
    return urlunparse(parsed._replace(netloc=_netloc(args.host if args.host is not None else host, port_part)))


def readable(delimiter: str) -> str:
    """A delimiter as a person reads it in a message: <TAB> for a tab, escapes for other control characters."""
    return "".join("<TAB>" if char == "\t" else char if char.isprintable() else repr(char)[1:-1]
                   for char in delimiter)


def send_main(argv: Sequence[str] | None = None) -> int:
    parser = _send_parser()
    args = parser.parse_args(argv)
    config = load_client_config(parser, args.config)
    base = send_url(parser, args, config.url)
    delimiter = args.delimiter.encode().decode("unicode_escape") if "\\" in args.delimiter else args.delimiter
    results, line_numbers = [], []
    text = sys.stdin.read()
    block = BLOCK_DELIMITER in text
    unit = "block" if block else "line"
    for number, line in enumerate(text.split(BLOCK_DELIMITER) if block else text.split("\n"), 1):
        if not line.strip():
            continue
        result = parse_send_line(line, delimiter, block=block)
        if result is None:
            shown = readable(delimiter)
            print(f"Warning: {unit} {number} skipped: not host{shown}[service{shown}]code{shown}output",
                  file=sys.stderr)
        else:
            results.append(result)
            line_numbers.append(number)
    sent = 0
    host, port = _endpoint(base)
    for start in range(0, len(results), SEND_BATCH):
        batch = results[start:start + SEND_BATCH]
        try:
            answer = _post(base.rstrip("/") + "/api/results", batch, config.user, config.password,
                           timeout=args.timeout, insecure=args.insecure)
        except (OSError, ValueError) as exc:
            cause = _cause(exc)
            if isinstance(cause, TimeoutError | socket.timeout):
                return _fail(sent, f"Error: Timeout after {args.timeout:g} seconds")
            if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLCertVerificationError) \
                    and _answers_plain_http(base, args.timeout):
                return _fail(sent, f"Error: TLS handshake with {base} failed: the server answered plain HTTP; "
                                   f"reach it with --url {_plain_url(base)}, or give the bridge server.tls_cert")
            return _fail(sent, f"Error: Could not connect to host {host} on port {port} ({base}): {cause}")
        if answer.status != 200:
            detail = _input_lines(str(answer.body.get("full_error") or answer.body.get("error") or ""),
                                  line_numbers[start:start + SEND_BATCH], unit)
            return _fail(sent, f"Error: the bridge refused {len(batch)} results (HTTP {answer.status}): {detail}")
        sent += len(batch)
    print(f"{sent} data packet(s) sent to host successfully.")
    return OK


def _input_lines(detail: str, line_numbers: Sequence[int], unit: str = "line") -> str:
    """The bridge names a batch's entries ``results[i]``; a person looks for the line (or block) of the input."""
    def line(match: re.Match[str]) -> str:
        index = int(match[1])
        if index >= len(line_numbers):
            return match[0]
        return f"{unit} {line_numbers[index]}" + (": " if match[2] else "")

    return re.sub(r"\bresults\[(\d+)\](\.)?", line, detail)


def _fail(sent: int, message: str) -> int:
    if sent:
        print(f"{sent} data packet(s) sent to host successfully.")
    print(message)
    return CRITICAL
