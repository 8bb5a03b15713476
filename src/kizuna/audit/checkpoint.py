"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, Ed25519 (ADR 0017).

A checkpoint states "the log named `origin` had `size` records and this root" (rule L5):

    kizuna.example/audit
    1204
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

    — kizuna.example/audit Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/...

The note text (the three body lines with their newlines) is signed with Ed25519; a signature
line carries the key's name and base64(4-byte key ID || 64-byte signature), the key ID being
SHA-256(name || 0x0A || 0x01 || public key)[:4] (c2sp.org/signed-note). Verifier keys travel
as "<name>+<hex key ID>+<base64(0x01 || public key)>" and signing keys as
"PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>", the text forms of Go's
golang.org/x/mod/sumdb/note, so other note tools read them. Opening a note follows rule L6.
Keys are made and read here; where they are kept is the caller's business (rule L9).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kizuna.audit.merkle import HASH_SIZE

ED25519 = 0x01
"""The signature type byte of Ed25519 in c2sp.org/signed-note."""

MAX_SIGNATURES = 100
"""Signature lines accepted in one note (the spec asks verifiers to accept at least 16)."""

_EM_DASH = "\u2014"
_SIZE = re.compile(r"0|[1-9][0-9]*")
_HEX_ID = re.compile(r"[0-9a-fA-F]{8}")


class CheckpointError(ValueError):
    """A checkpoint or signed note that cannot be trusted; the message says why."""


class CheckpointFormatError(CheckpointError):
    """The text is not a well-formed signed note or checkpoint."""


class CheckpointSignatureError(CheckpointError):
    """No trusted key signed the note, or a trusted key's signature does not verify."""


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte C2SP key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def check_key_name(name: str) -> None:
    """Raise ValueError unless `name` is a signed-note key name: non-empty, without
    Unicode spaces, '+' or control characters."""
    if not isinstance(name, str) or not name:
        raise ValueError("a key name is a non-empty string")
    bad = [c for c in name if c.isspace() or c == "+" or not c.isprintable()]
    if bad:
        raise ValueError(f"key name {name!r} holds {bad[0]!r}: no spaces, '+' or controls")
    if _encodes(name) is None:
        raise ValueError(f"key name {name!r} is not valid Unicode text")


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """The public half of a log's signing key, with its name: what an auditor trusts."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID that starts each of this key's signatures."""
        return key_id(self.name, self.public_key)

    def to_text(self) -> str:
        """The text form: "<name>+<hex key ID>+<base64(0x01 || public key)>"."""
        encoded = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_text(cls, text: str) -> VerifierKey:
        """The key of `to_text`'s form; ValueError says what is wrong."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise ValueError("a verifier key reads <name>+<hex key ID>+<base64 key>")
        name, hex_id, encoded = parts
        return cls(*_key_parts(name, hex_id, encoded, "verifier"))

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is this key's Ed25519 signature of `message`."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SigningKey:
    """A log's Ed25519 signing key and its name (the log's origin, by convention).

    Its repr shows the name and key ID only; `to_private_bytes` and `to_text` give the
    secret to whoever stores it."""

    name: str
    _key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        """A new random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, seed: bytes) -> SigningKey:
        """The key of a 32-byte Ed25519 seed (RFC 8032's private key)."""
        if len(seed) != 32:
            raise ValueError(f"an Ed25519 private key is 32 bytes, not {len(seed)}")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    def to_private_bytes(self) -> bytes:
        """The 32-byte seed: keep it secret."""
        return self._key.private_bytes_raw()

    @classmethod
    def from_text(cls, text: str) -> SigningKey:
        """The key of "PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>"."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise ValueError("a signing key reads PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")
        name, hex_id, encoded = parts[2:]
        seed_name, seed = _key_parts(name, hex_id, encoded, "signing", derive_public=True)
        return cls.from_private_bytes(seed_name, seed)

    def to_text(self) -> str:
        """The text form, "PRIVATE+KEY+<name>+<hex ID>+<base64(0x01 || seed)>": keep it secret."""
        encoded = base64.b64encode(bytes([ED25519]) + self.to_private_bytes()).decode()
        return f"PRIVATE+KEY+{self.name}+{self.public.key_id.hex()}+{encoded}"

    @property
    def public(self) -> VerifierKey:
        """The verifier key that checks this key's signatures."""
        return VerifierKey(self.name, self._key.public_key().public_bytes_raw())

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(name={self.name!r}, key_id={self.public.key_id.hex()})"


def _key_parts(
    name: str, hex_id: str, encoded: str, what: str, *, derive_public: bool = False
) -> tuple[str, bytes]:
    """(name, key bytes) of a key's text form, checking the key ID it states."""
    check_key_name(name)
    if _HEX_ID.fullmatch(hex_id) is None:
        raise ValueError(f"the {what} key's ID {hex_id!r} is not 8 hex digits")
    raw = _b64decode(encoded)
    if raw is None or len(raw) != 33:
        raise ValueError(f"the {what} key is not base64 of 33 bytes (type byte and key)")
    if raw[0] != ED25519:
        raise ValueError(f"the {what} key has type {raw[0]:#04x}; only Ed25519 (0x01) is known")
    key = raw[1:]
    if derive_public:
        public = Ed25519PrivateKey.from_private_bytes(key).public_key().public_bytes_raw()
    else:
        public = key
    if key_id(name, public) != bytes.fromhex(hex_id):
        raise ValueError(f"the {what} key's ID {hex_id} does not match its name and key")
    return name, key


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's size and root at one moment, under the log's name (c2sp.org/tlog-checkpoint)."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise ValueError("a checkpoint's origin is a non-empty string")
        if any(not c.isprintable() for c in self.origin) or _encodes(self.origin) is None:
            raise ValueError(f"origin {self.origin!r} holds a control character or bad text")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0:
            raise ValueError(f"a checkpoint's size is an integer >= 0, not {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise ValueError(f"a checkpoint's root is a {HASH_SIZE}-byte hash")

    def body(self) -> str:
        """The note text: origin, size and base64 root, each line ending in a newline."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def from_body(cls, text: str) -> Checkpoint:
        """The checkpoint of a note text; CheckpointFormatError says what is wrong."""
        if not text.endswith("\n"):
            raise CheckpointFormatError("a checkpoint body ends with a newline")
        lines = text[:-1].split("\n")
        if "" in lines:
            raise CheckpointFormatError("the checkpoint body has an empty line")
        if len(lines) > 3:
            raise CheckpointFormatError(
                f"the checkpoint has {len(lines) - 3} extension line(s); Kizuna writes "
                "and accepts only origin, size and root"
            )
        if len(lines) < 3:
            raise CheckpointFormatError(
                f"a checkpoint body has 3 lines (origin, size, root), this one {len(lines)}"
            )
        origin, size, encoded = lines
        if _SIZE.fullmatch(size) is None:
            raise CheckpointFormatError(
                f"the checkpoint's size {size!r} is not a decimal number without leading zeros"
            )
        root = _b64decode(encoded)
        if root is None or len(root) != HASH_SIZE:
            raise CheckpointFormatError(
                f"the checkpoint's root {encoded!r} is not the base64 of a {HASH_SIZE}-byte hash"
            )
        try:
            return cls(origin, int(size), root)
        except ValueError as error:
            raise CheckpointFormatError(str(error)) from None


# --- Signed notes ------------------------------------------------------------------------


def sign_note(text: str, key: SigningKey) -> str:
    """A signed note: `text` (ending in a newline), a blank line, and `key`'s signature line."""
    _check_note_chars(text)
    if not text.endswith("\n"):
        raise ValueError("a note's text ends with a newline")
    blob = key.public.key_id + key.sign(text.encode())
    return f"{text}\n{_EM_DASH} {key.name} {base64.b64encode(blob).decode()}\n"


def open_signed_note(note: str, verifiers: VerifierKey | Collection[VerifierKey]) -> str:
    """The text of a signed note that a key of `verifiers` signed (rule L6).

    Signatures by keys not in `verifiers` (another name, or another ID under a known name)
    are ignored, as c2sp.org/signed-note requires; a known key's signature that fails to
    verify rejects the whole note, and so does a note no known key signed.
    """
    known = _by_name_and_id(verifiers)
    text, lines = _split_note(note)
    message = text.encode()
    verified: set[tuple[str, bytes]] = set()
    for name, blob in lines:
        signer = known.get((name, blob[:4]))
        if signer is None:
            continue
        if (name, blob[:4]) in verified:
            raise CheckpointFormatError(f"key {name} signed the note twice")
        if len(blob) != 4 + 64 or not signer.verify(message, blob[4:]):
            raise CheckpointSignatureError(
                f"the signature of trusted key {name} (ID {blob[:4].hex()}) does not verify: "
                "the note was altered after signing, or forged"
            )
        verified.add((name, blob[:4]))
    if not verified:
        present = ", ".join(f"{name} (ID {blob[:4].hex()})" for name, blob in lines)
        trusted = ", ".join(f"{n} (ID {i.hex()})" for n, i in known)
        raise CheckpointSignatureError(
            f"no trusted key signed the note: it is signed by {present}; trusted: {trusted}"
        )
    return text


def _by_name_and_id(
    verifiers: VerifierKey | Collection[VerifierKey],
) -> dict[tuple[str, bytes], VerifierKey]:
    keys = [verifiers] if isinstance(verifiers, VerifierKey) else list(verifiers)
    if not keys:
        raise ValueError("no verifier key given")
    return {(k.name, k.key_id): k for k in keys}


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """(text, [(key name, decoded signature)]) of a signed note's format."""
    if not isinstance(note, str):
        raise CheckpointFormatError(f"a signed note is text, not {type(note).__name__}")
    try:
        _check_note_chars(note)
    except ValueError as error:
        raise CheckpointFormatError(str(error)) from None
    if not note.endswith("\n"):
        raise CheckpointFormatError("a signed note ends with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointFormatError("no blank line separates the note's text from signatures")
    text, signatures = note[: split + 1], note[split + 2 : -1]
    if not signatures:
        raise CheckpointFormatError("the note has no signature lines after its blank line")
    lines = signatures.split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointFormatError(f"the note has {len(lines)} signatures, over {MAX_SIGNATURES}")
    return text, [_signature_line(n, line) for n, line in enumerate(lines, start=1)]


def _signature_line(number: int, line: str) -> tuple[str, bytes]:
    prefix = f"{_EM_DASH} "
    if not line.startswith(prefix):
        raise CheckpointFormatError(
            f"signature line {number} does not start with an em dash and a space: {line!r}"
        )
    parts = line[len(prefix) :].split(" ")
    if len(parts) != 2:
        raise CheckpointFormatError(
            f"signature line {number} is not '— <key name> <base64 signature>': {line!r}"
        )
    name, encoded = parts
    try:
        check_key_name(name)
    except ValueError as error:
        raise CheckpointFormatError(f"signature line {number}: {error}") from None
    blob = _b64decode(encoded)
    if blob is None or len(blob) < 5:
        raise CheckpointFormatError(
            f"signature line {number}: {encoded!r} is not base64 of a key ID and a signature"
        )
    return name, blob


def _check_note_chars(text: str) -> None:
    bad = next((c for c in text if c < " " and c != "\n"), None)
    if bad is not None:
        raise ValueError(f"a signed note holds control character {bad!r}")
    if _encodes(text) is None:
        raise ValueError("a signed note is not valid Unicode text")


# --- Checkpoints -------------------------------------------------------------------------


def sign(checkpoint: Checkpoint, key: SigningKey) -> str:
    """The signed note of `checkpoint` (rule L5). By convention the key is named as the
    log's origin."""
    return sign_note(checkpoint.body(), key)


def open_note(
    note: str,
    verifier: VerifierKey | Collection[VerifierKey],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """The checkpoint of a signed note that a trusted key signed (rules L5-L6).

    Raises CheckpointFormatError for a malformed note or body, or one of another `origin`
    when one is given, and CheckpointSignatureError when no trusted key signed it or a
    trusted key's signature fails. The signature is checked before the body is read.
    """
    checkpoint = Checkpoint.from_body(open_signed_note(note, verifier))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointFormatError(
            f"the checkpoint is of log {checkpoint.origin!r}, not the expected {origin!r}"
        )
    return checkpoint


def _b64decode(text: str) -> bytes | None:
    """The bytes of standard, padded, canonical base64, or None."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def _encodes(text: str) -> bytes | None:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None
