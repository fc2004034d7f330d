"""A throwaway Icinga 2 (Debian's ``icinga2``, 2.13) with its REST API on a free loopback port, in a temporary
folder of its own: the peer the Icinga rows are compared with, and the reference the Icinga dialect's answers are
checked against (tests/test_e2e_icinga.py).

Its API speaks only TLS: a CA and a certificate for ``localhost`` are made with openssl. Started as root it runs
as Debian's ``nagios`` user (Icinga 2's RunAsUser), so its folder is made under /tmp and given to that user.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from bench.common import free_port

DEBIAN_BINARY = Path("/usr/lib/x86_64-linux-gnu/icinga2/sbin/icinga2")
USER = ("root", "icinga-bench")


def icinga2_binary() -> str | None:
    found = shutil.which("icinga2") or (str(DEBIAN_BINARY) if DEBIAN_BINARY.exists() else None)
    return found


def _quote(text: str) -> str:
    return json.dumps(text)  # an Icinga 2 DSL string literal is a JSON one for these names


class Icinga2:
    """``objects``: (host, its services); every object passive (no active checks, no notifications)."""

    def __init__(self, objects: Sequence[tuple[str, Sequence[str]]]) -> None:
        binary = icinga2_binary()
        if binary is None:
            raise RuntimeError("icinga2 is not installed (apt-get install --no-install-recommends icinga2)")
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="naemon-bridge-icinga2-", dir="/tmp"))
        runs_as = "nagios" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        group = "nagios" if os.geteuid() == 0 else (os.getgrgid(os.getegid()).gr_name if hasattr(os, "getgrgid")
                                                    else runs_as)
        d = self.directory
        for sub in ("etc", "lib/certs", "log", "cache", "spool", "run"):
            (d / sub).mkdir(parents=True)
        self._certificates(d / "lib" / "certs")
        lines = ["include <itl>", 'const NodeName = "localhost"', "object Endpoint NodeName {}",
                 'object Zone "master" { endpoints = [ NodeName ] }',
                 f'object ApiListener "api" {{ bind_host = "127.0.0.1"; bind_port = {self.port}; '
                 "accept_commands = true }",
                 f'object ApiUser {_quote(USER[0])} {{ password = {_quote(USER[1])}; permissions = [ "*" ] }}',
                 'object CheckerComponent "checker" {}']
        for host, services in objects:
            lines.append(f"object Host {_quote(host)} {{ check_command = \"dummy\"; enable_active_checks = false; "
                         "enable_notifications = false }")
            lines += [f"object Service {_quote(service)} {{ host_name = {_quote(host)}; check_command = \"dummy\"; "
                      "enable_active_checks = false; enable_notifications = false }" for service in services]
        (d / "etc" / "icinga2.conf").write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            entry = pwd.getpwnam(runs_as)
            for path in [d, *d.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        defines = {"ConfigDir": d / "etc", "DataDir": d / "lib", "LogDir": d / "log", "CacheDir": d / "cache",
                   "SpoolDir": d / "spool", "InitRunDir": d / "run", "PidPath": d / "run" / "icinga2.pid",
                   "VarsPath": d / "cache" / "icinga2.vars", "ObjectsPath": d / "cache" / "icinga2.debug",
                   "ModAttrPath": d / "lib" / "modified-attributes.conf", "RunAsUser": runs_as,
                   "RunAsGroup": group}
        command = [binary, "daemon", "-c", str(d / "etc" / "icinga2.conf"), "-x", "warning",
                   *[arg for key, value in defines.items() for arg in ("-D", f"{key}={value}")]]
        self.log = (d / "out.log").open("wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(objects)
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _certificates(certs: Path) -> None:
        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True)

        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(certs / "ca.key"), "-out",
                str(certs / "ca.crt"), "-subj", "/CN=naemon-bridge bench CA", "-days", "2")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(certs / "localhost.key"), "-out",
                str(certs / "localhost.csr"), "-subj", "/CN=localhost")
        openssl("x509", "-req", "-in", str(certs / "localhost.csr"), "-CA", str(certs / "ca.crt"), "-CAkey",
                str(certs / "ca.key"), "-CAcreateserial", "-out", str(certs / "localhost.crt"), "-days", "2")

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, *,
                headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = USER) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request, errors included (certificates not checked: self-made)."""
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        if auth is not None:
            request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as answer:
                return answer.status, answer.headers.get("Content-Type", ""), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read()

    def _wait_ready(self, objects: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Until the API answers for the first object (the listener comes up before every object is active)."""
        host = objects[0][0] if objects else ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("icinga2 exited:\n" + (self.directory / "out.log").read_text(errors="replace"))
            try:
                status, _, _ = self.request("GET", f"/v1/objects/hosts/{host}" if host else "/v1/status",
                                            headers={"Accept": "application/json"})
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("icinga2's API did not come up:\n" + (self.directory / "out.log").read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)
