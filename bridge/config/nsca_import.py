"""``naemon-bridge import-nsca-config /etc/nsca.cfg``: the ``[nsca]`` (and ``[engine]``) section equivalent to a
classic nsca 2.x config, so migrating is one command. nsca reads ``name=value`` lines ("#" starts a comment
line), the value being the rest of the line; its names are given beside ours."""

from __future__ import annotations

import json

from bridge.config.model import ConfigError
from bridge.core.nsca import Method, supported_methods

# nsca.cfg names that have no counterpart here, and why (what the bridge does instead).
_NOT_CARRIED = {
    "pid_file": "serve --pidfile",
    "nsca_user": "[server] user",
    "nsca_group": "[server] group",
    "nsca_chroot": "systemd's sandboxing (naemon-bridge systemd-unit)",
    "debug": "[log] level = \"debug\"",
    "log_facility": "[log] target = \"syslog\" (facility daemon)",
    "alternate_dump_file": "the spool ([spool] directory) while the engine does not read",
    "aggregate_writes": "the delivery task writes in batches anyway",
    "append_to_file": "the bridge writes only into the engine's pipe",
    "check_result_path": "the bridge writes only into the engine's pipe",
    "strict_mode_spoofing": "nsca.allowed_networks, and the hosts the [[users]] entry may submit for",
}


def _toml(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def read_nsca_cfg(text: str, source: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ConfigError(source, f"line {number}", f"not name=value: {line!r}")
        values[name.strip()] = value  # nsca takes the rest of the line, spaces included
    return values


def nsca_section(text: str, source: str) -> str:
    """The TOML to paste into naemon-bridge.toml for the nsca.cfg ``text``; ConfigError for what cannot be."""
    values = read_nsca_cfg(text, source)
    port = values.get("server_port", "5667").strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(source, "server_port", f"not a port: {port!r}")
    address = values.get("server_address", "").strip() or "0.0.0.0"
    listen = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    method_text = values.get("decryption_method", "1").strip()  # nsca's default: XOR
    try:
        method = Method(int(method_text))
    except ValueError:
        raise ConfigError(source, "decryption_method", f"method {method_text} is not supported by naemon-bridge; "
                                                       f"supported: {supported_methods()}") from None
    age = values.get("max_packet_age", "30").strip()
    lines = [f"# From {source} by naemon-bridge import-nsca-config: nsca.cfg's names beside ours.", "[nsca]",
             f"listen = {_toml(listen)}  # server_address, server_port",
             f"password = {_toml(values.get('password', ''))}  # password",
             f"encryption_method = {int(method)}  # decryption_method",
             f"max_packet_age = 0  # max_packet_age is {age} there, but nsca 2.10 never enforces it; "
             f"{age} here would drop packets stamped further than that from this machine's clock",
             'user = "nsca"  # whose grants apply: add a [[users]] entry with this name (e.g. commands = '
             '["PROCESS_SERVICE_CHECK_RESULT", "PROCESS_HOST_CHECK_RESULT"])',
             "# allowed_networks = [\"10.0.0.0/8\"]  # optional: the client networks that may connect"]
    if "command_file" in values:
        lines += ["", "[engine]", f"command_file = {_toml(values['command_file'].strip())}  # command_file",
                  '# kind = "nagios"  # for Nagios 4; the default, "naemon", for Naemon: they read output escapes '
                  'differently']
    left = sorted(set(values) & set(_NOT_CARRIED))
    unknown = sorted(set(values) - set(_NOT_CARRIED) - {"server_port", "server_address", "password",
                                                        "decryption_method", "max_packet_age", "command_file"})
    if left or unknown:
        lines.append("")
    lines += [f"# {name}: not carried over; here: {_NOT_CARRIED[name]}" for name in left]
    lines += [f"# {name}: not an nsca 2.10 setting; ignored" for name in unknown]
    return "\n".join(lines) + "\n"
