"""check-config is the gate serve is: what serve refuses, check-config refuses with the same words (file, key,
reason), and what serve warns about, check-config says too. Each case through ``naemon-bridge check-config`` and
``naemon-bridge serve`` as a user runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import argon2
import bcrypt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.config.model import password_hash_problem
from bridge.daemon.cli import main
from tests.conftest import ROOT, start_bridge

ARGON2_HASH = argon2.PasswordHasher().hash("pw")
ARGON2_CUT_IN_SALT = ARGON2_HASH[:ARGON2_HASH.rindex("$") - 5]


@dataclass(frozen=True)
class Places:
    """Folders outside pytest's root-only one, so the account the bridge becomes can reach them: ``open`` anyone
    may write in, ``locked`` the bridge's account may not. ``server`` makes that account: as root, serve and
    check-config become 'nobody' (server.user); otherwise the tests' own account meets a 0555 folder."""

    open: Path
    locked: Path
    afile: Path
    server: str


@pytest.fixture
def places() -> Iterator[Places]:
    base = Path(tempfile.mkdtemp(prefix="bridge-preflight-"))
    base.chmod(0o755)
    (base / "open").mkdir()
    (base / "open").chmod(0o777)
    (base / "locked").mkdir(mode=0o755)
    (base / "afile").write_text("not a folder\n")
    root = os.getuid() == 0
    if not root:
        (base / "locked").chmod(0o555)
    yield Places(base / "open", base / "locked", base / "afile", '[server]\nuser = "nobody"\n' if root else "")
    (base / "locked").chmod(0o755)
    shutil.rmtree(base)


def config_text(places: Places, *, spool: Path | None = None, log: str = "", locked: bool = False,
                users: str = '[[users]]\nname = "u"\npassword = "p"\n') -> str:
    """``locked``: the bridge runs as the account that may not write in ``places.locked``."""
    return (f'{places.server if locked and places.server else "[server]"}\nlisten = "127.0.0.1:0"\n'
            f'[engine]\nkind = "nagios"\ncommand_file = "{places.open / "engine.cmd"}"\n'
            f'[spool]\ndirectory = "{spool or places.open / "spool"}"\n{log}{users}')


# (what is wrong, the config, the key named, words of the reason)
CASES: list[tuple[str, Callable[[Places], str], str, str]] = [
    ("argon2 hash cut inside its salt",
     lambda p: config_text(p, users=f'[[users]]\nname = "alice"\npassword_hash = "{ARGON2_CUT_IN_SALT}"\n'),
     "users[0].password_hash", "is not a complete argon2 hash"),
    ("bcrypt hash cut short",
     lambda p: config_text(p, users='[[users]]\nname = "u"\npassword = "p"\n'
                                    '[[users]]\nname = "bob"\npassword_hash = "$2b$12$abc"\n'),
     "users[1].password_hash", "is not a complete bcrypt hash"),
    ("spool under a file", lambda p: config_text(p, spool=p.afile / "spool"),
     "spool.directory", "is a file, not a folder"),
    ("spool that cannot be created", lambda p: config_text(p, spool=p.locked / "spool", locked=True),
     "spool.directory", "cannot be created"),
    ("spool that cannot be written", lambda p: config_text(p, spool=p.locked, locked=True),
     "spool.directory", "cannot be written"),
    ("log file in a missing folder",
     lambda p: config_text(p, log=f'[log]\ntarget = "file"\nfile = "{p.open / "missing" / "bridge.log"}"\n'),
     "log.file", "does not exist"),
    ("log file in a folder that cannot be written",
     lambda p: config_text(p, log=f'[log]\ntarget = "file"\nfile = "{p.locked / "bridge.log"}"\n', locked=True),
     "log.file", "cannot be created"),
]


def serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", "serve", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("what,text,key,reason", CASES, ids=[case[0] for case in CASES])
def test_check_config_refuses_what_serve_refuses(places: Places, capsys: pytest.CaptureFixture[str], what: str,
                                                 text: Callable[[Places], str], key: str, reason: str) -> None:
    config = places.open / "bridge.toml"
    config.write_text(text(places))
    assert main(["check-config", "--config", str(config)]) == 1, what
    checked = capsys.readouterr()
    assert f"naemon-bridge: {config}: {key}: " in checked.err and reason in checked.err, checked.err
    assert "OK" not in checked.out

    served = serve(config)
    assert served.returncode == 1, served.stderr
    assert served.stderr.strip().splitlines() == [line for line in checked.err.strip().splitlines()
                                                  if "warning:" not in line and "note:" not in line]
    assert "Traceback" not in served.stderr


def test_a_folder_as_config_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"naemon-bridge: {tmp_path}: is a folder, not a config file " \
                                      "(e.g. naemon-bridge.toml in it)\n"
    served = serve(tmp_path)
    assert served.returncode == 1
    assert served.stderr.splitlines() == [f"naemon-bridge: {tmp_path}: is a folder, not a config file "
                                          "(e.g. naemon-bridge.toml in it)"]


def test_missing_engine_files_and_no_users_are_warned_about_not_refused(places: Places,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = places.open / "bridge.toml"
    objects_cache = places.open / "objects.cache"
    config.write_text(config_text(places, users="").replace("[spool]", f'objects_cache = "{objects_cache}"\n[spool]'))
    warnings = [f"engine.command_file {places.open / 'engine.cmd'} does not exist (yet)",
                f"engine.objects_cache {objects_cache} does not exist (yet)",
                f"no [[users]] in {config}: every request will be refused (401)"]

    assert main(["check-config", "--config", str(config)]) == 0
    checked = capsys.readouterr()
    assert "OK" in checked.out
    for warning in warnings:
        assert f"naemon-bridge: warning: {warning}" in checked.err, checked.err

    bridge = start_bridge(config)
    try:
        bridge.wait_listening()
    finally:
        assert bridge.stop() == 0, bridge.log_text()
    for warning in warnings:
        assert f"WARNING naemon_bridge: {warning}" in bridge.log_text(), bridge.log_text()


def test_the_hashes_the_bridge_makes_pass() -> None:
    assert password_hash_problem(ARGON2_HASH) is None
    assert password_hash_problem(bcrypt.hashpw(b"pw", bcrypt.gensalt(12)).decode()) is None
    assert password_hash_problem(argon2.PasswordHasher(type=argon2.Type.I).hash("pw")) is None


# Cheap hashes (the cost is in the parameters only): each example runs the libraries' own verification.
_CHEAP_ARGON2 = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("right")
_CHEAP_BCRYPT = bcrypt.hashpw(b"right", bcrypt.gensalt(4)).decode()


def _library_parses(password_hash: str) -> bool:
    """The library reads the hash (a wrong password is then only a mismatch)."""
    try:
        if password_hash.startswith("$argon2"):
            argon2.PasswordHasher().verify(password_hash, "wrong")
        else:
            bcrypt.checkpw(b"wrong", password_hash.encode())
    except argon2.exceptions.VerifyMismatchError:
        return True
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError, ValueError):
        return False
    return True


def _verifies(password_hash: str) -> bool:
    try:
        if password_hash.startswith("$argon2"):
            return argon2.PasswordHasher().verify(password_hash, "right")
        return bcrypt.checkpw(b"right", password_hash.encode())
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError, ValueError):
        return False


@st.composite
def mangled_hashes(draw: st.DrawFn) -> str:
    good = draw(st.sampled_from([_CHEAP_ARGON2, _CHEAP_BCRYPT]))
    how = draw(st.sampled_from(["cut", "replace", "append"]))
    if how == "cut":
        return good[:draw(st.integers(0, len(good)))]
    if how == "replace":
        at = draw(st.integers(0, len(good) - 1))
        return good[:at] + draw(st.sampled_from("$=,.+/Aa0!9zOeu ")) + good[at + 1:]
    return good + draw(st.text("AZaz09+/.$=", min_size=1, max_size=4))


@settings(max_examples=400, deadline=None)
@given(mangled_hashes())
def test_a_hash_is_accepted_only_if_the_library_reads_it_and_refused_only_if_it_never_matches(
        password_hash: str) -> None:
    problem = password_hash_problem(password_hash)
    if problem is None:
        assert _library_parses(password_hash)
    else:
        assert not _verifies(password_hash), problem
