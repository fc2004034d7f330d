"""[cluster]: the config (errors name the file and the key) and the pure parts of the roles (routing by host)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config.model import ConfigError, load_config

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
