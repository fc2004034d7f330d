"""Config: the example parses, every error names the file and the key, check-config reports it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config.model import ConfigError, load_config
from bridge.core.values import EngineKind
from bridge.daemon.cli import main

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = '[engine]\nkind = "nagios"\ncommand_file = "rw/nagios.cmd"\n[[users]]\nname = "u"\npassword = "p"\n'


def test_the_example_config_parses_with_every_key(tmp_path: Path) -> None:
    config = load_config(ROOT / "etc" / "naemon-bridge.toml")
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8888)
    assert config.engine.kind is EngineKind.NAEMON
    assert (config.health.stalled_after, config.health.max_spool_age) == (10.0, 60.0)
    assert [u.name for u in config.users] == ["status_update", "backup-jobs", "barcode-readers"]
    assert "mysecret" not in repr(config) and "1484558366922" not in repr(config)
    grants = config.users[1].grants
    assert grants.commands == ("PROCESS_SERVICE_CHECK_RESULT",)
    assert [p.matches("db12") for p in grants.hosts or ()] == [False, True]


@pytest.mark.parametrize("value,expected", [("65536", 65536), ('"64KiB"', 65536), ('"2GiB"', 2 * 1024**3),
                                            ('"1.5 GB"', 1_500_000_000), ('"512mib"', 512 * 1024**2)])
def test_spool_sizes_take_units(tmp_path: Path, value: str, expected: int) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(f"[spool]\nmax_bytes = {value}\n")
    assert load_config(path).spool.max_bytes == expected


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(MINIMAL)
    assert load_config(path).engine.command_file == tmp_path / "rw" / "nagios.cmd"


@pytest.mark.parametrize("text,key,reason", [
    (MINIMAL + "[server]\nlisten = 8888\n", "server.listen", "must be a string, not an integer 8888"),
    (MINIMAL + '[server]\nlisten = "localhost"\n', "server.listen", "host:port"),
    (MINIMAL + '[server]\nlisen = "127.0.0.1:1"\n', "server.lisen", "unknown key"),
    (MINIMAL + '[engine2]\n', "engine2", "unknown section"),
    ('[engine]\nkind = "icinga"\n', "engine.kind", "'naemon', 'nagios'"),
    ('[[users]]\nname = "u"\n', "users[0].password", "exactly one of"),
    ('[[users]]\nname = "u"\npassword = "p"\ntoken = "t"\n', "users[0].password", "exactly one of"),
    ('[[users]]\npassword = "p"\n', "users[0].name", "required"),
    ('[[users]]\nname = "u"\npassword_hash = "md5:abc"\n', "users[0].password_hash", "argon2 or bcrypt"),
    ('[[users]]\nname = "u"\npassword = "p"\n[[users]]\nname = "u"\npassword = "q"\n', "users[1].name",
     "used twice"),
    ('[alignak]\nignore_unknown_service = "yes"\n', "alignak.ignore_unknown_service",
     "must be a boolean (true or false), not a string 'yes'"),
    ('[engine]\nbusy_wait = 120\n', "engine.busy_wait", "must be a number from 0 to 60, not 120"),
    ('[alignak]\ngive_feedback = 3\n', "alignak.give_feedback", "must be 0 (none), 1 (the host) or 2"),
    ('[alignak]\nfeedback_host = [1]\n', "alignak.feedback_host", "list of property names"),
    ('[alignak]\ngive_result = 1\n', "alignak.give_result", "must be a boolean"),
    (MINIMAL + '[server]\nworkers = 0\n', "server.workers", "must be from 1 to 64, not 0"),
    ('[server]\nheader_timeout = 0\n', "server.header_timeout", "must be a number from 0.1 to 3600, not 0"),
    ('[server]\nbody_timeout = "30s"\n', "server.body_timeout", "must be a number, not a string"),
    ('[server]\nmax_connections = 0\n', "server.max_connections", "must be at least 1, not 0"),
    ('[engine]\nbusy_wait = -1\n', "engine.busy_wait", "must be a number from 0 to 60"),
    ('[spool]\nmax_bytes = "63KiB"\n', "spool.max_bytes", "at least 65536"),
    ('[spool]\nmax_bytes = "lots"\n', "spool.max_bytes", "2GiB"),
    ('[spool]\nmax_bytes = 1.5\n', "spool.max_bytes", "2GiB"),
    ('[spool]\nfsync = "sometimes"\n', "spool.fsync", "'always', 'interval', 'never'"),
    ('[server]\nshutdown_timeout = -1\n', "server.shutdown_timeout", "at least 0"),
    ('[[users]]\nname = "u"\npassword = "p"\ncommands = ["PROCESS_SERVICE_CHECK_RESLT"]\n', "users[0].commands",
     "not an external command"),
    ('[[users]]\nname = "u"\npassword = "p"\nhosts = ["re:(unclosed"]\n', "users[0].hosts", "bad regular"),
    ('[[users]]\nname = "u"\npassword = "p"\nservices = "http"\n', "users[0].services", "must be an array"),
    ('[auth]\nmax_failures = 0\n', "auth.max_failures", "at least 1"),
    ('[health]\nstalled_after = 0\n', "health.stalled_after", "at least 0.1, not 0"),
    ('[health]\nmax_spool_age = "1m"\n', "health.max_spool_age", "must be a number, not a string"),
    ('[health]\nstaled_after = 5\n', "health.staled_after", "unknown key"),
])
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert str(path) in str(caught.value)


def test_check_config_exit_codes_and_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(MINIMAL)
    assert main(["check-config", "--config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    assert main(["check-config", "--config", str(bad)]) == 1
    assert f"{bad}: not valid TOML" in capsys.readouterr().err
    assert main(["check-config", "--config", str(tmp_path / "missing.toml")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("serve", "check-config", "demo", "submit", "send", "systemd-unit", "import-nsca-config",
                    "hash-password"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        assert "usage: naemon-bridge " + command in capsys.readouterr().out


def test_hash_password_reads_stdin_and_prints_a_hash_the_bridge_accepts(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bridge", "hash-password"], input="s3cret; with spaces\n",
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    password_hash = done.stdout.strip()
    assert password_hash.startswith("$argon2id$")
    path = tmp_path / "bridge.toml"
    path.write_text(f'[[users]]\nname = "u"\npassword_hash = "{password_hash}"\n')
    import argon2

    assert argon2.PasswordHasher().verify(load_config(path).users[0].password_hash, "s3cret; with spaces")


# A key of each kind the parser reads, and a TOML value of each type.
_KEYS_BY_KIND = {"server.listen": "string", "server.workers": "integer", "engine.busy_wait": "number",
                 "alignak.ignore_unknown_service": "boolean", "users.commands": "array"}
_VALUES = {"string": '"x"', "integer": "7", "float": "1.5", "boolean": "true", "array": '["X"]',
           "table": "{ a = 1 }", "date-time": "1979-05-27T07:32:00Z", "date": "1979-05-27", "time": "07:32:00"}


@pytest.mark.parametrize("key", sorted(_KEYS_BY_KIND))
@pytest.mark.parametrize("value_type", sorted(_VALUES))
def test_type_errors_name_toml_types_with_their_article(tmp_path: Path, key: str, value_type: str) -> None:
    kind = _KEYS_BY_KIND[key]
    if value_type == kind or (kind == "number" and value_type in ("integer", "float")):
        return  # the right type
    section, name = key.split(".")
    header = '[[users]]\nname = "u"\npassword = "p"' if section == "users" else f"[{section}]"
    path = tmp_path / "bridge.toml"
    path.write_text(f"{header}\n{name} = {_VALUES[value_type]}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    article = "an" if kind[0] in "aeiou" else "a"
    value_article = "an" if value_type[0] in "aeiou" else "a"
    assert caught.value.reason.startswith(f"must be {article} {kind}"), caught.value.reason
    assert f", not {value_article} {value_type} " in caught.value.reason, caught.value.reason


def test_a_reload_names_the_keys_to_restart_for_as_the_config_spells_them(tmp_path: Path) -> None:
    from bridge.daemon.reload import needs_restart

    def parsed(text: str) -> object:
        path = tmp_path / "bridge.toml"
        path.write_text(text)
        return load_config(path)

    base = parsed('[server]\nlisten = "127.0.0.1:8888"\n[engine]\nquery_socket = "naemon.qh"\n')
    for changed, expected in [
        ('[server]\nlisten = "127.0.0.1:8899"\n[engine]\nquery_socket = "naemon.qh"\n', ["server.listen"]),
        ('[server]\nlisten = "0.0.0.0:8888"\n[engine]\nquery_socket = "naemon.qh"\n', ["server.listen"]),
        ('[server]\nlisten = "127.0.0.1:8888"\nworkers = 2\nmax_body_bytes = 2048\n[engine]\n'
         'query_socket = "naemon.qh"\n', ["server.max_body_bytes", "server.workers"]),
        ('[server]\nlisten = "127.0.0.1:8888"\n[engine]\nquery_socket = "naemon.qh"\nquery_connections = 2\n',
         ["engine.query_connections"]),
        ('[server]\nlisten = "127.0.0.1:8888"\n', ["engine.query_socket"]),
    ]:
        assert sorted(needs_restart(base, parsed(changed))) == expected  # type: ignore[arg-type]


def test_alignak_options_take_alignaks_names_defaults_and_forms(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text("")
    defaults = load_config(path).alignak
    assert (defaults.ignore_unknown_host, defaults.ignore_unknown_service, defaults.give_result,
            defaults.give_feedback, defaults.feedback_host, defaults.set_timestamp) == (False, True, False, 1, (), True)
    path.write_text('[alignak]\nfeedback_host = "alias, notes,,location"\nfeedback_service = ["alias"]\n'
                    "give_feedback = 2\nset_timestamp = false\nignore_unknown_host = true\n")
    options = load_config(path).alignak
    assert options.feedback_host == ("alias", "notes", "location")  # alignak-module-ws's comma-separated form
    assert (options.feedback_service, options.give_feedback, options.set_timestamp, options.ignore_unknown_host) \
        == (("alias",), 2, False, True)
