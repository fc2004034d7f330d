"""The classic NSCA 2.x wire protocol (Debian's ``nsca``/``send_nsca`` 2.10.2): the init packet, the data packets
of both sizes, their CRC, and decryption with the connection's IV and the password. Pure: no sockets, no clock,
no randomness (the listener in ``bridge.intake.nsca`` brings the IV and the time).

The facts, with their sources, are in docs/research/nsca-wire.md. In short:

- the server sends 132 bytes on connect: a 128-byte IV and a 32-bit timestamp (network order);
- each data packet is C's ``struct data_packet`` with its padding: int16 version (3), 2 bytes of padding,
  uint32 CRC32, uint32 timestamp, int16 return code, host name (64), service description (128, empty for a host
  result), plugin output (4,096 bytes; 512 in 2.7's "legacy" packets), 2 bytes of padding — 4,304 or 720 bytes,
  padding and the bytes after each string's NUL filled with random bytes by send_nsca;
- the CRC32 (zlib's) is taken over the whole packet with its CRC field zeroed;
- ``encryption_method`` 1 XORs each packet with the IV, then with the password, both restarting at each packet;
  the mcrypt methods run one 8-bit CFB stream across all the packets of a connection, its key the password
  zero-padded or cut to the algorithm's largest key, its IV the first block-size bytes of the 128-byte IV.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from cryptography.hazmat.decrepit.ciphers.algorithms import CAST5, Blowfish, TripleDES
from cryptography.hazmat.decrepit.ciphers.modes import CFB8
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes

IV_SIZE = 128
INIT_PACKET_SIZE = IV_SIZE + 4
MAX_HOST_NAME = 64
MAX_DESCRIPTION = 128
MAX_OUTPUT = 4096
LEGACY_MAX_OUTPUT = 512
_HEADER = struct.Struct("!hxxIIh")  # version, (padding), crc32, timestamp, return code
_HOST_AT = _HEADER.size  # 14
_DESCRIPTION_AT = _HOST_AT + MAX_HOST_NAME  # 78
_OUTPUT_AT = _DESCRIPTION_AT + MAX_DESCRIPTION  # 206
PACKET_SIZE = _OUTPUT_AT + MAX_OUTPUT + 2  # 4304: the struct is padded to a multiple of 4
LEGACY_PACKET_SIZE = _OUTPUT_AT + LEGACY_MAX_OUTPUT + 2  # 720
PACKET_VERSION = 3
_CRC_FIELD = slice(4, 8)


class Method(IntEnum):
    """nsca's ``encryption_method`` numbers (include/common.h) that the bridge decrypts."""

    NONE = 0
    XOR = 1
    DES = 2
    TRIPLE_DES = 3
    CAST128 = 4
    BLOWFISH = 8
    RIJNDAEL128 = 14


METHOD_NAMES = {Method.NONE: "none", Method.XOR: "XOR", Method.DES: "DES", Method.TRIPLE_DES: "3DES",
                Method.CAST128: "CAST-128", Method.BLOWFISH: "Blowfish", Method.RIJNDAEL128: "RIJNDAEL-128"}


def supported_methods() -> str:
    return ", ".join(f"{int(m)} ({METHOD_NAMES[m]})" for m in Method)


class Cipher8(Protocol):
    """One direction of a connection's cipher: bytes in, as many bytes out, its state carried across calls."""

    def update(self, data: bytes) -> bytes: ...


class BadPacket(Exception):
    """A packet that is not one: ``reason`` is its metrics label, the message says what an operator should check."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Packet:
    """One decrypted, checked data packet. Texts are UTF-8 (other bytes become U+FFFD), cut at their NUL."""

    timestamp: int
    return_code: int
    host_name: str
    service_description: str  # "" for a host result
    plugin_output: str


def init_packet(iv: bytes, timestamp: int) -> bytes:
    if len(iv) != IV_SIZE:
        raise ValueError(f"the IV must be {IV_SIZE} bytes, not {len(iv)}")
    return iv + struct.pack("!I", timestamp & 0xFFFFFFFF)


def crc32(packet: bytes) -> int:
    """nsca's CRC32 (the polynomial and reflection zlib uses) over ``packet`` with its CRC field zeroed."""
    return zlib.crc32(memoryview(packet)[8:], zlib.crc32(b"\0\0\0\0", zlib.crc32(packet[:4])))


def _text(packet: bytes, start: int, stop: int) -> str:
    end = packet.find(b"\0", start, stop)
    return packet[start:stop if end < 0 else end].decode("utf-8", "replace")


def parse_packet(plain: bytes) -> Packet:
    """A decrypted packet of either size; BadPacket for a wrong version or CRC (nsca's two checks, in its order:
    a wrong password or method shows up as either)."""
    if len(plain) not in (PACKET_SIZE, LEGACY_PACKET_SIZE):
        raise BadPacket("short_packet", f"a packet is {PACKET_SIZE} or {LEGACY_PACKET_SIZE} bytes, not {len(plain)}")
    version, sent_crc, timestamp, return_code = _HEADER.unpack_from(plain)
    if version != PACKET_VERSION:
        raise BadPacket("bad_version", f"packet version {version}, not {PACKET_VERSION}: a wrong password or "
                                       "encryption_method, or not an NSCA client")
    if sent_crc != crc32(plain):
        raise BadPacket("bad_crc", "CRC32 mismatch: a wrong password or encryption_method, or a damaged packet")
    return Packet(timestamp=timestamp, return_code=return_code,
                  host_name=_text(plain, _HOST_AT, _DESCRIPTION_AT),
                  service_description=_text(plain, _DESCRIPTION_AT, _OUTPUT_AT),
                  plugin_output=_text(plain, _OUTPUT_AT, len(plain) - 2))


def _field(value: str, size: int, filler: bytes) -> bytes:
    raw = value.encode()[:size - 1] + b"\0"
    return raw + filler[len(raw):size]


def build_packet(packet: Packet, *, legacy: bool = False, filler: bytes = b"") -> bytes:
    """A plaintext packet as send_nsca builds one (for tests and the bench): ``filler`` stands for its random
    padding (zeros when short)."""
    size = LEGACY_PACKET_SIZE if legacy else PACKET_SIZE
    filler = (filler + bytes(size))[:size]
    output_size = (LEGACY_MAX_OUTPUT if legacy else MAX_OUTPUT)
    body = (_field(packet.host_name, MAX_HOST_NAME, filler[_HOST_AT:])
            + _field(packet.service_description, MAX_DESCRIPTION, filler[_DESCRIPTION_AT:])
            + _field(packet.plugin_output, output_size, filler[_OUTPUT_AT:]) + filler[size - 2:])
    head = struct.pack("!hxxIIh", PACKET_VERSION, 0, packet.timestamp, packet.return_code)
    unsigned = head[:2] + filler[2:4] + head[4:] + body
    return unsigned[:4] + struct.pack("!I", crc32(unsigned)) + unsigned[8:]


class _Xor:
    """Method 1: each packet XORed with the IV, then the password, both from their first byte at each packet."""

    def __init__(self, password: bytes, iv: bytes) -> None:
        self._iv, self._password = iv, password
        self._masks: dict[int, int] = {}

    def _mask(self, size: int) -> int:
        mask = self._masks.get(size)
        if mask is None:
            iv = (self._iv * (size // len(self._iv) + 1))[:size]
            key = (self._password * (size // len(self._password) + 1))[:size] if self._password else bytes(size)
            mask = self._masks[size] = int.from_bytes(iv, "big") ^ int.from_bytes(key, "big")
        return mask

    def update(self, data: bytes) -> bytes:
        size = len(data)
        return (int.from_bytes(data, "big") ^ self._mask(size)).to_bytes(size, "big")


class _Plain:
    def update(self, data: bytes) -> bytes:
        return data


class _Cfb8OnEcb:
    """mcrypt's 8-bit CFB around a block cipher that the library offers only as ECB (CAST-128, Blowfish): each
    byte is XORed with the first byte of the encrypted shift register, which then takes in the ciphertext byte.
    Only the mode is written here; the cipher is the library's."""

    def __init__(self, algorithm: CipherAlgorithm, iv: bytes, *, decrypt: bool) -> None:
        self._block = Cipher(algorithm, modes.ECB()).encryptor()
        self._register = bytearray(iv)
        self._decrypt = decrypt

    def update(self, data: bytes) -> bytes:
        register, encrypt, out = self._register, self._block.update, bytearray(len(data))
        for index, byte in enumerate(data):
            result = byte ^ encrypt(bytes(register))[0]
            out[index] = result
            del register[0]
            register.append(byte if self._decrypt else result)
        return bytes(out)


# (the algorithm from its key, mcrypt's largest key size for it, its block size)
_MCRYPT: dict[Method, tuple[Callable[[bytes], CipherAlgorithm], int, int]] = {
    Method.DES: (lambda key: TripleDES(key * 3), 8, 8),  # DES is 3DES with one key three times
    Method.TRIPLE_DES: (TripleDES, 24, 8),
    Method.CAST128: (CAST5, 16, 8),
    Method.BLOWFISH: (Blowfish, 56, 8),
    Method.RIJNDAEL128: (algorithms.AES, 32, 16),  # a 32-byte key: AES-256
}
_NATIVE_CFB8 = (Method.DES, Method.TRIPLE_DES, Method.RIJNDAEL128)


def mcrypt_key(method: Method, password: bytes) -> bytes:
    size = _MCRYPT[method][1]
    return password[:size].ljust(size, b"\0")


def cipher(method: Method, password: bytes, iv: bytes, *, decrypt: bool = True) -> Cipher8:
    """The connection's cipher for ``method``: decrypting (the server) or encrypting (tests, the bench). XOR
    restarts at each call: give it one whole packet a call."""
    if method is Method.NONE:
        return _Plain()
    if method is Method.XOR:
        return _Xor(password, iv)
    build, _, block = _MCRYPT[method]
    algorithm = build(mcrypt_key(method, password))
    if method in _NATIVE_CFB8:
        mode = Cipher(algorithm, CFB8(iv[:block]))
        return mode.decryptor() if decrypt else mode.encryptor()
    return _Cfb8OnEcb(algorithm, iv[:block], decrypt=decrypt)
