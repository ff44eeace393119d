"""C2SP signed-note (c2sp.org/signed-note@v1): parse, sign, open; verifier and signer keys.

A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
``— <key name> base64(key ID[4] || signature)``.  Supported key types:

* ``0x01`` Ed25519 (signed-note §Ed25519 signatures): signs the note text.
* ``0x04`` Ed25519 witness cosignatures (c2sp.org/tlog-cosignature ``cosignature/v1``): the
  signature is ``uint64 timestamp || Ed25519(cosignature/v1 message)``.

Opening a note follows the spec and Go's ``golang.org/x/mod/sumdb/note``: signatures from keys
the caller does not know are ignored (reported as unverified); a known key whose signature does
not verify rejects the note; a note with no verified signature is rejected; any syntax error
rejects the note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100  # the spec asks for at least 16; Go's reference accepts 100
SIG_PREFIX = "\u2014 "


class NoteError(ValueError):
    """A note, key or signature is malformed, or a note failed to verify."""


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise NoteError(f"{what} is not valid base64") from e


def is_valid_key_name(name: str) -> bool:
    """signed-note §Format: non-empty, no Unicode spaces, no ``+``."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """signed-note: key ID = SHA-256(name || 0x0A || type || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _check_text(text: str, what: str) -> None:
    for c in text:
        if c < " " and c != "\n":
            raise NoteError(f"{what} contains the control character U+{ord(c):04X}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise NoteError(f"{what} is not valid UTF-8") from e


# --- keys ---------------------------------------------------------------------------------------


class Verifier(Protocol):
    """A known key: its name, key ID and how it checks a signature over note text."""

    name: str
    key_id: int

    def verify(self, text: bytes, sig: bytes) -> bool: ...


@dataclass(frozen=True)
class Ed25519Verifier:
    """A type 0x01 verifier key (signed-note §Ed25519 signatures)."""

    name: str
    key_id: int
    public_key: bytes

    def verify(self, text: bytes, sig: bytes) -> bool:
        if len(sig) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(sig, text)
        except InvalidSignature:
            return False
        return True

    @property
    def vkey(self) -> str:
        return format_vkey(self.name, ALG_ED25519, self.public_key)


def cosignature_message(text: bytes, timestamp: int) -> bytes:
    """c2sp.org/tlog-cosignature v1: ``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint."""
    return b"cosignature/v1\ntime %d\n" % timestamp + text


@dataclass(frozen=True)
class CosignatureVerifier:
    """A type 0x04 witness key (c2sp.org/tlog-cosignature, ``cosignature/v1``, Ed25519)."""

    name: str
    key_id: int
    public_key: bytes

    def verify(self, text: bytes, sig: bytes) -> bool:
        if len(sig) != 8 + 64:
            return False
        (timestamp,) = struct.unpack(">Q", sig[:8])
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                sig[8:], cosignature_message(text, timestamp)
            )
        except InvalidSignature:
            return False
        return True

    @property
    def vkey(self) -> str:
        return format_vkey(self.name, ALG_COSIGNATURE_V1, self.public_key)


def format_vkey(name: str, alg: int, public_key: bytes) -> str:
    """``<name>+<hex key ID>+base64(type || public key)``."""
    kid = key_id(name, alg, public_key)
    return f"{name}+{kid:08x}+{base64.b64encode(bytes([alg]) + public_key).decode()}"


def parse_vkey(vkey: str) -> Ed25519Verifier | CosignatureVerifier:
    """Parse a verifier key; reject unknown types, bad lengths and key IDs that do not match."""
    parts = vkey.strip().split("+", 2)  # the base64 key may itself contain '+'
    if len(parts) != 3:
        raise NoteError("verifier key must be <name>+<hex key ID>+<base64 key>")
    name, kid_hex, key_b64 = parts
    if not is_valid_key_name(name):
        raise NoteError(f"invalid key name {name!r} in verifier key")
    if len(kid_hex) != 8 or any(c not in "0123456789abcdef" for c in kid_hex):
        raise NoteError("verifier key ID must be 8 lowercase hex digits")
    raw = _b64decode(key_b64, "verifier key")
    if not raw:
        raise NoteError("verifier key is empty")
    alg, public_key = raw[0], raw[1:]
    if alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise NoteError(f"unsupported verifier key type 0x{alg:02x}")
    if len(public_key) != 32:
        raise NoteError(f"Ed25519 public key has {len(public_key)} bytes, not 32")
    kid = int(kid_hex, 16)
    if kid != key_id(name, alg, public_key):
        raise NoteError(f"key ID {kid_hex} does not match the key of {name}")
    cls = Ed25519Verifier if alg == ALG_ED25519 else CosignatureVerifier
    return cls(name, kid, public_key)


def format_skey(name: str, alg: int, seed: bytes) -> str:
    """The private-key line ``PRIVATE+KEY+<name>+<hex key ID>+base64(alg || seed)`` of an Ed25519
    seed, in the shape of the signed-note vkey (c2sp.org/signed-note) with the seed for the key."""
    b64 = base64.b64encode(bytes([alg]) + seed).decode()
    return f"PRIVATE+KEY+{name}+{_seed_key_id(name, alg, seed):08x}+{b64}"


def _seed_key_id(name: str, alg: int, seed: bytes) -> int:
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key_id(name, alg, public.public_bytes(Encoding.Raw, PublicFormat.Raw))


def parse_skey(skey: str, alg: int, what: str) -> tuple[str, bytes]:
    """(name, seed) of a private-key line written by :func:`format_skey` for algorithm ``alg``;
    ``what`` names the key in errors.  The key ID must match the one the seed gives."""
    # The base64 may itself contain '+', so split on the first four only.
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError(f"{what} must be PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")
    _, _, name, kid_hex, key_b64 = parts
    if not is_valid_key_name(name):
        raise NoteError(f"invalid key name {name!r} in {what}")
    raw = _b64decode(key_b64, what)
    if len(raw) != 33 or raw[0] != alg:
        raise NoteError(f"{what} must be a type 0x{alg:02x} Ed25519 32-byte seed")
    if kid_hex != f"{_seed_key_id(name, alg, raw[1:]):08x}":
        raise NoteError(f"key ID {kid_hex} does not match the key of {name}")
    return name, raw[1:]


@dataclass(frozen=True)
class Ed25519Signer:
    """A type 0x01 signing key; ``skey`` is ``PRIVATE+KEY+<name>+<hex id>+base64(0x01||seed)``."""

    name: str
    seed: bytes = field(repr=False)  # the private key never shows in repr()

    @property
    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> bytes:
        return self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> int:
        return key_id(self.name, ALG_ED25519, self.public_key)

    @property
    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self.key_id, self.public_key)

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    @property
    def skey(self) -> str:
        return format_skey(self.name, ALG_ED25519, self.seed)

    def sign(self, text: bytes) -> bytes:
        return self._private.sign(text)

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        if not is_valid_key_name(name):
            raise NoteError(f"invalid key name {name!r}: no spaces or '+' allowed")
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(name, seed)

    @classmethod
    def from_skey(cls, skey: str) -> Ed25519Signer:
        return cls(*parse_skey(skey, ALG_ED25519, "signer key"))


# --- notes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, key ID and the signature bytes after the key ID."""

    name: str
    key_id: int
    sig: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_id.to_bytes(4, "big") + self.sig).decode()
        return f"{SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class Note:
    """A parsed (not yet verified) signed note."""

    text: str
    signatures: tuple[Signature, ...]


@dataclass(frozen=True)
class OpenedNote:
    """A note with at least one verified signature; ``unverified`` are from unknown keys."""

    text: str
    verified: list[Signature] = field(default_factory=list)
    unverified: list[Signature] = field(default_factory=list)


def parse_note(msg: str | bytes) -> Note:
    """Parse a signed note strictly (signed-note §Format); do not verify anything."""
    if isinstance(msg, bytes):
        try:
            msg = msg.decode("utf-8")
        except UnicodeDecodeError as e:
            raise NoteError("note is not valid UTF-8") from e
    _check_text(msg, "note")
    split = msg.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, sigs = msg[: split + 1], msg[split + 2 :]
    if not sigs:
        raise NoteError("note has no signature lines")
    if not sigs.endswith("\n"):
        raise NoteError("note's last signature line does not end in a newline")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    out: list[Signature] = []
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"line {line[:40]!r} in the signature block is not a signature")
        name, sep, b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not sep or not is_valid_key_name(name) or not b64:
            raise NoteError(f"malformed signature line {line[:60]!r}")
        raw = _b64decode(b64, f"signature by {name}")
        if len(raw) < 5:
            raise NoteError(f"signature by {name} is too short")
        out.append(Signature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return Note(text, tuple(out))


def open_note(msg: str | bytes, verifiers: list[Verifier] | tuple[Verifier, ...]) -> OpenedNote:
    """Parse and verify a note against the known ``verifiers``.

    Unknown keys (name and key ID not both matching a known key) are ignored; a known key with a
    bad signature rejects the note; so does a note with no verified signature.
    """
    note = parse_note(msg)
    known = {(v.name, v.key_id): v for v in verifiers}
    text = note.text.encode()
    opened = OpenedNote(note.text)
    seen: set[tuple[str, int]] = set()
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            if sig not in opened.unverified:
                opened.unverified.append(sig)
            continue
        if (sig.name, sig.key_id) in seen:
            continue
        seen.add((sig.name, sig.key_id))
        if not v.verify(text, sig.sig):
            raise NoteError(f"the signature by {sig.name} ({sig.key_id:08x}) does not verify")
        opened.verified.append(sig)
    if not opened.verified:
        names = ", ".join(sorted({s.name for s in note.signatures}))
        raise NoteError(f"note has no signature from a trusted key (signed by: {names})")
    return opened


def sign_note(text: str, *signers: Ed25519Signer) -> str:
    """Sign ``text`` (valid note text ending in a newline) with each signer; return the note."""
    if not text.endswith("\n"):
        raise NoteError("note text must end in a newline")
    _check_text(text, "note text")
    if not signers:
        raise NoteError("a note needs at least one signer")
    data = text.encode()
    lines = "".join(Signature(s.name, s.key_id, s.sign(data)).line() for s in signers)
    return f"{text}\n{lines}"
