"""[cluster]: the config (errors name the file and the key) and the pure parts of the roles (routing by host)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.config.model import ConfigError, load_config
from bridge.core.command_table import COMMANDS
from bridge.core.objects import KnownObjects, parse_objects_cache
from bridge.core.routing import (
    decode_commands,
    decode_message,
    decode_objects,
    encode_message,
    encode_objects,
    engines_for,
    merged,
    route,
)
from bridge.core.values import Command
from bridge.daemon.cli import main
from bridge.daemon.reload import needs_restart

EDGE = '[cluster]\nrole = "edge"\nservers = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]\nreplicas = 3\n'
SINK = '[cluster]\nrole = "sink"\nengine = "naemon-eu1"\n'


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "bridge.toml"
    path.write_text(text)
    return load_config(path)


def test_without_the_section_the_bridge_is_one_process(tmp_path: Path) -> None:
    assert _load(tmp_path, "").cluster is None


def test_an_edge_and_a_sink_parse(tmp_path: Path) -> None:
    edge = _load(tmp_path, EDGE).cluster
    assert edge is not None and edge.role == "edge" and edge.replicas == 3
    assert edge.servers == ("nats://127.0.0.1:4222", "nats://127.0.0.1:4223") and edge.stream == "NAEMON_BRIDGE"
    sink = _load(tmp_path, SINK + 'credentials = "nats.creds"\n').cluster
    assert sink is not None and sink.engine == "naemon-eu1" and sink.credentials == tmp_path / "nats.creds"


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    config = _load(tmp_path, SINK + 'user = "bridge"\npassword = "hunter2"\n')
    assert config.cluster is not None and config.cluster.password == "hunter2"
    assert "hunter2" not in repr(config)
    assert "t0ken" not in repr(_load(tmp_path, SINK + 'token = "t0ken"\n'))


@pytest.mark.parametrize("text,key,reason", [
    ('[cluster]\nservers = []\n', "cluster.role", "is required"),
    ('[cluster]\nrole = "both"\n', "cluster.role", "'edge', 'sink'"),
    ('[cluster]\nrole = "sink"\n', "cluster.engine", "is required with role = \"sink\""),
    (EDGE + 'engine = "x"\n', "cluster.engine", "is for a sink"),
    (SINK.replace("naemon-eu1", "eu.1"), "cluster.engine", "subject token"),
    (EDGE + 'stream = "a b"\n', "cluster.stream", "letters, digits"),
    (EDGE.replace("replicas = 3", "replicas = 7"), "cluster.replicas", "from 1 to 5"),
    ('[cluster]\nrole = "edge"\nservers = ["127.0.0.1:4222"]\n', "cluster.servers", "nats://"),
    (SINK + 'user = "u"\n', "cluster.password", "go together"),
    (SINK + 'user = "u"\npassword = "p"\ntoken = "t"\n', "cluster.token", "one of"),
    (SINK + 'tls_cert = "c.pem"\n', "cluster.tls_key", "go together"),
    (SINK + 'replica = 3\n', "cluster.replica", "unknown key"),
    (EDGE + '[server]\nworkers = 2\n', "server.workers", "must be 1 with [cluster]"),
])
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert caught.value.key == key and reason in caught.value.reason, str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "bridge.toml"))


# -- routing (pure) ----------------------------------------------------------------------------------------------

def _engines() -> dict[str, KnownObjects]:
    eu = parse_objects_cache("define host {\n\thost_name\teu-web\n}\ndefine service {\n\thost_name\teu-web\n"
                             "\tservice_description\thttp\n}\ndefine hostgroup {\n\thostgroup_name\tweb\n}\n")
    us = parse_objects_cache("define host {\n\thost_name\tus-db\n}\ndefine hostgroup {\n\thostgroup_name\tweb\n}\n")
    return {"eu": eu, "us": us}


def _command(name: str, *fields: str) -> Command:
    return Command(COMMANDS[name], fields, 1700000000)


def test_a_result_goes_to_the_engine_that_has_its_host() -> None:
    engines = _engines()
    eu = _command("PROCESS_SERVICE_CHECK_RESULT", "eu-web", "http", "0", "ok")
    us = _command("PROCESS_HOST_CHECK_RESULT", "us-db", "1", "down")
    eu2 = _command("PROCESS_HOST_CHECK_RESULT", "eu-web", "0", "up")
    assert route([eu, us, eu2], engines) == [("eu", [eu, eu2]), ("us", [us])]  # each engine keeps the order
    assert engines_for(_command("PROCESS_HOST_CHECK_RESULT", "nowhere", "0", "x"), engines) == []


def test_group_and_engine_wide_commands_go_to_every_engine_that_has_them() -> None:
    engines = _engines()
    assert engines_for(_command("DISABLE_HOSTGROUP_HOST_CHECKS", "web"), engines) == ["eu", "us"]
    assert engines_for(_command("DISABLE_NOTIFICATIONS"), engines) == ["eu", "us"]


def test_an_edge_checks_names_against_every_engine_at_once() -> None:
    both = merged(_engines())
    assert set(both.hosts) == {"eu-web", "us-db"} and ("eu-web", "http") in both.services
    problem = both.unknown(_command("PROCESS_SERVICE_CHECK_RESULT", "us-db", "http", "0", "ok"))
    assert problem is not None and "no service 'http' on host 'us-db'" in str(problem)


def test_objects_and_messages_survive_their_trip_through_jetstream() -> None:
    objects = _engines()["eu"]
    assert decode_objects(encode_objects(objects)) == objects
    commands = [_command("PROCESS_SERVICE_CHECK_RESULT", "eu-web", "http", "2", "a;b|x=1\nlong")]
    engine, message_id, body = decode_message(encode_message("eu", "abc123", commands))
    assert (engine, message_id, decode_commands(body)) == ("eu", "abc123", commands)


def test_check_config_of_an_edge_does_not_warn_about_engine_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) \
        -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(f'[spool]\ndirectory = "{tmp_path / "spool"}"\n{EDGE}[[users]]\nname = "u"\npassword_hash = '
                    '"$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"\n')
    assert main(["check-config", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "command_file" not in err and "[cluster] edge: results go to JetStream" in err
    assert "OK — listen 127.0.0.1:8888, cluster edge, stream NAEMON_BRIDGE, spool" in out


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(host=_TEXT.filter(bool), service=_TEXT.filter(bool), output=_TEXT, stamp=st.integers(0, 4102444800),
       engine=st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True), message_id=st.uuids())
def test_any_command_comes_out_of_a_message_as_it_went_in(host: str, service: str, output: str, stamp: int,
                                                         engine: str, message_id: object) -> None:
    commands = [Command(COMMANDS["PROCESS_SERVICE_CHECK_RESULT"], (host, service, "2", output), stamp),
                Command(COMMANDS["DISABLE_NOTIFICATIONS"], (), stamp)]
    line = encode_message(engine, str(message_id).replace("-", ""), commands)
    got_engine, got_id, body = decode_message(line)
    assert (got_engine, got_id) == (engine, str(message_id).replace("-", ""))
    assert decode_commands(body) == commands


def test_a_reload_names_the_cluster_keys_that_need_a_restart(tmp_path: Path) -> None:
    old, new = _load(tmp_path, EDGE), _load(tmp_path, EDGE.replace("replicas = 3", "replicas = 1"))
    assert needs_restart(old, new) == ["cluster.replicas"]
    assert needs_restart(_load(tmp_path, ""), old) == ["cluster"]
    assert needs_restart(old, old) == []


def test_systemd_hears_an_edges_jetstream_not_an_engine(tmp_path: Path) -> None:
    from bridge.daemon.cluster_roles import make_cluster_app
    from bridge.daemon.server import status_line
    from bridge.intake import DIALECTS

    config = _load(tmp_path, f'[spool]\ndirectory = "{tmp_path / "spool"}"\n{EDGE}')
    assert status_line(make_cluster_app(config, DIALECTS)).startswith("JETSTREAM NOT REACHABLE; spool: 0 results")
