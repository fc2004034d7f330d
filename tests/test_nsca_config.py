"""``[nsca]`` in the config (errors name the key and the file) and ``import-nsca-config`` from a classic nsca.cfg."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bridge.config.model import ConfigError, parse_config
from bridge.core.nsca import Method
from bridge.daemon.cli import main

USER = {"name": "nsca", "password": "x"}


def nsca(**section: object) -> dict[str, object]:
    return {"nsca": {"listen": "127.0.0.1:5667", "user": "nsca", **section}, "users": [USER]}


def test_defaults_and_values() -> None:
    assert parse_config({}).nsca.listen is None  # no listener unless asked
    config = parse_config(nsca(password="pw", encryption_method=14, max_packet_age=30,
                               allowed_networks=["10.0.0.0/8", "::1"]))
    assert (config.nsca.password, config.nsca.encryption_method, config.nsca.max_packet_age) == \
        (b"pw", Method.RIJNDAEL128, 30)
    assert [str(n) for n in config.nsca.allowed_networks or ()] == ["10.0.0.0/8", "::1/128"]
    assert "pw" not in repr(config)


def test_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "nsca.secret"
    secret.write_text("from a file\n")
    assert parse_config(nsca(password_file=str(secret))).nsca.password == b"from a file"
    with pytest.raises(ConfigError, match="nsca.password_file: password and password_file exclude each other"):
        parse_config(nsca(password="a", password_file=str(secret)))


@pytest.mark.parametrize(("section", "message"), [
    ({"encryption_method": 5}, "f.toml: nsca.encryption_method: method 5 is not supported; supported: 0 (none), "
                               "1 (XOR), 2 (DES), 3 (3DES), 4 (CAST-128), 8 (Blowfish), 14 (RIJNDAEL-128)"),
    ({"listen": "5667"}, "f.toml: nsca.listen: must be host:port"),
    ({"user": ""}, "f.toml: nsca.user: is required with listen"),
    ({"user": "nobody"}, "f.toml: nsca.user: 'nobody' is no [[users]] name"),
    ({"max_packet_age": -1}, "f.toml: nsca.max_packet_age: must be seconds from 0"),
    ({"allowed_networks": ["10.0.0.0/33"]}, "f.toml: nsca.allowed_networks: "),
    ({"port": 5667}, "f.toml: nsca.port: unknown key"),
])
def test_errors_name_the_key_and_the_file(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(nsca(**section), "f.toml")
    assert str(caught.value).startswith(message)


NSCA_CFG = """\
# Debian's nsca.cfg, shortened
pid_file=/run/nagios/nsca.pid
server_port=5668
server_address=192.0.2.1
command_file=/var/lib/nagios4/rw/nagios.cmd
password=a "quoted" pass=word
decryption_method=14
max_packet_age=30
"""


def test_import_nsca_config_prints_a_section_the_bridge_reads(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "nsca.cfg"
    cfg.write_text(NSCA_CFG)
    assert main(["import-nsca-config", str(cfg)]) == 0
    printed = capsys.readouterr().out
    assert "# pid_file: not carried over; here: serve --pidfile" in printed
    assert "30 here would drop packets stamped further than that from this machine's clock\n" in printed
    assert '# kind = "nagios"  # for Nagios 4' in printed  # the pipe alone does not say which engine reads it
    data = tomllib.loads(printed)
    assert data["engine"] == {"command_file": "/var/lib/nagios4/rw/nagios.cmd"}
    config = parse_config({**data, "users": [USER]})
    assert config.nsca.listen == "192.0.2.1:5668"
    assert config.nsca.password == b'a "quoted" pass=word'
    assert (config.nsca.encryption_method, config.nsca.max_packet_age) == (Method.RIJNDAEL128, 0)


def test_import_refuses_a_method_the_bridge_cannot_decrypt(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "nsca.cfg"
    cfg.write_text("decryption_method=9\n")
    assert main(["import-nsca-config", str(cfg)]) == 1
    assert f"{cfg}: decryption_method: method 9 is not supported by naemon-bridge" in capsys.readouterr().err
    assert main(["import-nsca-config", str(tmp_path / "missing.cfg")]) == 1


def test_check_config_names_the_nsca_listener(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(f'[spool]\ndirectory = "{tmp_path / "spool"}"\n[nsca]\nlisten = "127.0.0.1:5667"\n'
                    'user = "nsca"\npassword = "x"\n[[users]]\nname = "nsca"\npassword = "x"\n')
    assert main(["check-config", "--config", str(path)]) == 0
    assert ", nsca 127.0.0.1:5667 as nsca, engine " in capsys.readouterr().out
