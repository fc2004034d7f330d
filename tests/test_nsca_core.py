"""The NSCA 2.x packet codec and ciphers (bridge.core.nsca): pure, so property-based. Every method is checked against
the real send_nsca in tests/test_e2e_nsca.py; here each cipher must at least invert its own encryption, run one
stream across packets, and the parser must refuse whatever is not a packet without raising anything else."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core import nsca

names = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), min_size=1, max_size=20)
packets = st.builds(nsca.Packet, timestamp=st.integers(0, 2**32 - 1), return_code=st.integers(-2**15, 2**15 - 1),
                    host_name=names, service_description=st.one_of(st.just(""), names),
                    plugin_output=st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                                          max_size=300))


def test_sizes_are_nscas() -> None:
    # C's struct data_packet with its padding: 4,304 bytes, and 720 with 2.7's 512 bytes of output.
    assert (nsca.PACKET_SIZE, nsca.LEGACY_PACKET_SIZE, nsca.INIT_PACKET_SIZE) == (4304, 720, 132)


def test_init_packet_is_the_iv_then_the_time_in_network_order() -> None:
    iv = bytes(range(128))
    assert nsca.init_packet(iv, 0x01020304) == iv + b"\x01\x02\x03\x04"


@given(packets, st.booleans(), st.binary(min_size=4304, max_size=4304))
def test_a_built_packet_parses_back(packet: nsca.Packet, legacy: bool, filler: bytes) -> None:
    raw = nsca.build_packet(packet, legacy=legacy, filler=filler)
    assert len(raw) == (720 if legacy else 4304)
    parsed = nsca.parse_packet(raw)
    assert (parsed.timestamp, parsed.return_code) == (packet.timestamp, packet.return_code)
    assert parsed.host_name == packet.host_name
    assert parsed.service_description == packet.service_description
    assert packet.plugin_output.startswith(parsed.plugin_output)  # cut at 4,095 or 511 bytes, as send_nsca does


@given(packets, st.integers(0, 4303), st.integers(1, 255))
def test_any_flipped_byte_is_refused(packet: nsca.Packet, where: int, flip: int) -> None:
    raw = bytearray(nsca.build_packet(packet))
    raw[where] ^= flip
    with pytest.raises(nsca.BadPacket) as caught:
        nsca.parse_packet(bytes(raw))
    assert caught.value.reason in ("bad_version", "bad_crc")


@given(st.binary(max_size=5000))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    try:
        nsca.parse_packet(data)
    except nsca.BadPacket as exc:
        assert exc.reason in ("short_packet", "bad_version", "bad_crc")


def test_the_crc_is_zlibs_over_the_packet_with_its_field_zeroed() -> None:
    raw = nsca.build_packet(nsca.Packet(1, 0, "h", "s", "out"))
    (sent,) = struct.unpack_from("!I", raw, 4)
    assert sent == zlib.crc32(raw[:4] + bytes(4) + raw[8:])


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(list(nsca.Method)), st.binary(max_size=70).filter(lambda p: b"\0" not in p),
       st.binary(min_size=128, max_size=128), st.lists(packets, min_size=1, max_size=3))
def test_each_cipher_inverts_itself_across_packets(method: nsca.Method, password: bytes, iv: bytes,
                                                    items: list[nsca.Packet]) -> None:
    encrypt = nsca.cipher(method, password, iv, decrypt=False)
    decrypt = nsca.cipher(method, password, iv)
    for packet in items:
        raw = nsca.build_packet(packet)
        assert nsca.parse_packet(decrypt.update(encrypt.update(raw))) == nsca.parse_packet(raw)


def test_xor_is_the_iv_then_the_password_restarting_each_packet() -> None:
    iv, password = bytes(range(128)), b"abc"
    raw = bytes(300)
    expected = bytes(iv[i % 128] ^ password[i % 3] for i in range(300))
    xor = nsca.cipher(nsca.Method.XOR, password, iv)
    assert xor.update(raw) == expected
    assert xor.update(raw) == expected  # no state carried from one packet to the next


def test_mcrypt_ciphers_run_one_stream_across_packets() -> None:
    iv = bytes(range(128))
    one = nsca.cipher(nsca.Method.RIJNDAEL128, b"pw", iv, decrypt=False)
    first, second = one.update(bytes(32)), one.update(bytes(32))
    assert first != second
    assert nsca.cipher(nsca.Method.RIJNDAEL128, b"pw", iv, decrypt=False).update(bytes(64)) == first + second


def test_keys_are_the_password_zero_padded_or_cut_to_mcrypts_largest() -> None:
    assert nsca.mcrypt_key(nsca.Method.DES, b"pw") == b"pw" + bytes(6)
    assert nsca.mcrypt_key(nsca.Method.RIJNDAEL128, b"x" * 40) == b"x" * 32
    assert len(nsca.mcrypt_key(nsca.Method.BLOWFISH, b"")) == 56


def test_cfb8_on_ecb_matches_the_librarys_own_cfb8() -> None:
    # The hand-built mode (for CAST-128 and Blowfish) must be exactly the library's CFB8, checked with 3DES
    # where the library has both.
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.decrepit.ciphers.modes import CFB8
    from cryptography.hazmat.primitives.ciphers import Cipher

    key, iv, data = bytes(range(24)), bytes(range(8)), bytes(range(256)) * 3
    ours = nsca._Cfb8OnEcb(TripleDES(key), iv, decrypt=False).update(data)
    theirs = Cipher(TripleDES(key), CFB8(iv)).encryptor().update(data)
    assert ours == theirs
    assert nsca._Cfb8OnEcb(TripleDES(key), iv, decrypt=True).update(theirs) == data
