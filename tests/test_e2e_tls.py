"""HTTPS: the daemon with a self-signed certificate made here; the op5 seed's `curl -k` and `submit -i` work,
plain HTTP to the TLS port fails cleanly and leaves the daemon serving."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import ROOT, USER, bridge_config, start_bridge
from tests.helpers import read_status, wait_for


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True)
    return cert, key


def test_https_with_curl_k_and_submit_i(nagios: NagiosSandbox, tmp_path: Path,
                                        certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    config = bridge_config(tmp_path / "bridge.toml", nagios, known_objects=True,
                           server=f'tls_cert = "{cert}"\ntls_key = "{key}"',
                           users=f'[[users]]\nname = "{USER[0]}"\npassword = "{USER[1]}"\n')
    bridge = start_bridge(config)
    try:
        url = bridge.wait_listening()
        assert url.startswith("https://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        # op5's article: curl -k against a self-signed certificate.
        done = subprocess.run(
            ["curl", "-sk", "-u", f"{USER[0]}:{USER[1]}", "-H", "content-type: application/json", "-d",
             '{"host_name":"seed-host","service_description":"Example service","status_code":"1",'
             '"plugin_output":"over TLS"}', f"https://localhost:{port}/api/command/PROCESS_SERVICE_CHECK_RESULT"],
            capture_output=True, text=True, timeout=30)
        # op5-command-api.md gives these bytes exactly.
        assert done.stdout == '{"result":"Successfully submitted PROCESS_SERVICE_CHECK_RESULT"}', done
        wait_for(lambda: read_status(nagios.status_file)[("seed-host", "Example service")]["plugin_output"]
                 == "over TLS", what="the TLS result in status.dat")
        submit = [sys.executable, "-m", "bridge", "submit", "-M", "localhost", "-r", str(port), "-u", USER[0], "-p",
                  USER[1], "-H", "seed-host", "-S", "Example service", "-s", "OK", "-m", "submitted -i"]
        done = subprocess.run([*submit, "-i"], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert (done.returncode, done.stdout.strip()) == (
            0, 'OK - Service "Example service" on host "seed-host" was updated successfully')
        done = subprocess.run(submit, capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 2 and "SSL certificate validation error" in done.stdout
        done = subprocess.run([*submit[:4], "--url", f"https://localhost:{port}", *submit[8:]], capture_output=True,
                              text=True, cwd=ROOT, env={"SSL_CERT_FILE": str(cert), "PATH": "/usr/bin:/bin"},
                              timeout=60)
        assert done.returncode == 0, done.stdout  # trusting the certificate verifies it

        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            plain.request("GET", "/health")
            plain.getresponse().read()
        plain.close()
        done = subprocess.run(["curl", "-sk", f"https://127.0.0.1:{port}/health"], capture_output=True, text=True,
                              timeout=30)
        assert json.loads(done.stdout)["status"] == "ok"  # still serving after the plain-HTTP attempt
    finally:
        assert bridge.stop() == 0


def test_an_alignak_session_cookie_is_secure_over_tls_through_workers(nagios: NagiosSandbox, tmp_path: Path,
                                                                      certificate: tuple[Path, Path]) -> None:
    """Alignak's /ws/login is answered by the hub behind the workers, on its Unix socket: the cookie must still
    say Secure, as the client came over TLS."""
    import requests
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    cert, key = certificate
    config = bridge_config(tmp_path / "bridge.toml", nagios, known_objects=True,
                           server=f'tls_cert = "{cert}"\ntls_key = "{key}"\nworkers = 2',
                           users=f'[[users]]\nname = "{USER[0]}"\npassword = "{USER[1]}"\n')
    bridge = start_bridge(config)
    try:
        url = bridge.wait_listening()
        session = requests.Session()
        port = int(url.rsplit(":", 1)[1])
        # verify=False as curl -k (per request: requests lets REQUESTS_CA_BUNDLE override a session's)
        response = session.post(f"https://localhost:{port}/ws/login",
                                json={"username": USER[0], "password": USER[1]}, verify=False)
        assert response.status_code == 200 and response.json()["_status"] == "OK", response.text
        cookie = response.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
        assert session.get(f"https://localhost:{port}/ws/are_you_alive", verify=False).json() == "Yes I am :)"
    finally:
        assert bridge.stop() == 0, bridge.log_text()
