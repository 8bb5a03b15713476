"""Signed notes and checkpoints (ADR 0017, rules L5-L6), against known answers of the C2SP
spec and of Go's golang.org/x/mod/sumdb/note, the format's reference implementation."""

from __future__ import annotations

import base64
import hashlib

import pytest

from kizuna.audit import (
    EMPTY_ROOT,
    Checkpoint,
    CheckpointError,
    CheckpointFormatError,
    CheckpointSignatureError,
    SigningKey,
    VerifierKey,
    leaf_hash,
    open_note,
    open_signed_note,
    sign,
    sign_note,
)
from kizuna.audit.checkpoint import key_id

GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

ORIGIN = "kizuna.example/audit"
KEY = SigningKey.from_private_bytes(ORIGIN, bytes(range(32)))
ROOT = leaf_hash(b"x")
CHECKPOINT = Checkpoint(ORIGIN, 1204, ROOT)


def test_go_reference_keys_and_signature() -> None:
    key = SigningKey.from_text(GO_SKEY)
    assert key.public.to_text() == GO_VKEY
    assert key.to_text() == GO_SKEY
    assert sign_note(GO_TEXT, key) == GO_NOTE
    assert open_signed_note(GO_NOTE, VerifierKey.from_text(GO_VKEY)) == GO_TEXT


def test_c2sp_spec_example() -> None:
    verifier = VerifierKey.from_text(SPEC_VKEY)
    assert verifier.key_id.hex() == "530d903a"
    assert open_signed_note(SPEC_NOTE, verifier) == "This is an example message.\n"


def test_key_id_is_c2sp_ed25519() -> None:
    public = KEY.public.public_key
    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    assert key_id(ORIGIN, public) == KEY.public.key_id == expected


def test_checkpoint_text_and_round_trip() -> None:
    note = sign(CHECKPOINT, KEY)
    body = f"{ORIGIN}\n1204\n{base64.b64encode(ROOT).decode()}\n"
    assert note.startswith(body + "\n— kizuna.example/audit ")
    assert note.endswith("\n") and note.count("\n") == 5
    blob = base64.b64decode(note.splitlines()[-1].split(" ")[2])
    assert blob[:4] == KEY.public.key_id and len(blob) == 68
    assert open_note(note, KEY.public) == CHECKPOINT
    assert open_note(note, KEY.public, origin=ORIGIN) == CHECKPOINT
    assert Checkpoint.from_body(body) == CHECKPOINT


def test_keys_round_trip() -> None:
    fresh = SigningKey.generate("log.example/a")
    again = SigningKey.from_private_bytes("log.example/a", fresh.to_private_bytes())
    assert again.public == fresh.public
    assert SigningKey.from_text(fresh.to_text()).public == fresh.public
    assert VerifierKey.from_text(fresh.public.to_text()) == fresh.public
    assert fresh.to_private_bytes().hex() not in repr(fresh)
    assert repr(fresh).startswith("SigningKey(name='log.example/a', key_id=")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PeterNeumann+c74f20a3", "reads <name>"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "holds ' '"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not 8 hex"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not base64"),
        ("PeterNeumann+c74f20a3+AhpczQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "type 0x02"),
        ("Other+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
    ],
)
def test_bad_verifier_keys(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VerifierKey.from_text(text)


def test_bad_signing_keys() -> None:
    with pytest.raises(ValueError, match="reads PRIVATE"):
        SigningKey.from_text(GO_VKEY)
    with pytest.raises(ValueError, match="does not match"):
        SigningKey.from_text(GO_SKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(ValueError, match="32 bytes"):
        SigningKey.from_private_bytes("n", b"short")
    with pytest.raises(ValueError, match="holds '\\+'"):
        SigningKey.generate("a+b")
    with pytest.raises(ValueError, match="non-empty"):
        SigningKey.generate("")


def _body(origin: str = ORIGIN, size: str = "1204", root: str | None = None) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(ROOT).decode() if root is None else root}\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body() + "extra\n", "1 extension line"),
        (f"{ORIGIN}\n1204\n", "3 lines .*this one 2"),
        (_body(size="01204"), "size '01204' is not a decimal"),
        (_body(size="+5"), "size '\\+5' is not a decimal"),
        (_body(size="١٢"), "is not a decimal"),
        (_body(root=base64.b64encode(ROOT[:31]).decode()), "not the base64 of a 32-byte"),
        (_body(root=base64.b64encode(ROOT).decode().rstrip("=")), "not the base64"),
        (_body(origin=""), "an empty line"),
        (f"{ORIGIN}\n\n1204\n", "an empty line"),
    ],
)
def test_bad_checkpoint_bodies_are_format_errors(body: str, message: str) -> None:
    with pytest.raises(CheckpointFormatError, match=message):
        open_note(sign_note(body, KEY), KEY.public)


def test_non_canonical_base64_is_refused() -> None:
    encoded = base64.b64encode(ROOT).decode()
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(encoded[-2])
    sloppy = (
        encoded[:-2]
        + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last ^ 1]
        + "="
    )
    assert base64.b64decode(sloppy) == ROOT, "same bytes, other padding bits"
    with pytest.raises(CheckpointFormatError, match="not the base64"):
        Checkpoint.from_body(_body(root=sloppy))


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda n: n[:-1], "ends with a newline"),
        (lambda n: n.replace("\n\n", "\n"), "no blank line"),
        (lambda n: n.split("\n\n")[0] + "\n\n", "no signature lines"),
        (lambda n: n.replace("— ", "-- "), "does not start with an em dash"),
        (lambda n: n.replace("— kizuna.example/audit ", "— kizuna.example/audit  "), "is not '—"),
        (lambda n: n.replace("1204", "12\t04"), "control character '\\\\t'"),
        (lambda n: n.replace("1204", "12\r04"), "control character"),
        (lambda n: n[:-3] + "!=\n", "is not base64 of a key ID"),
        (lambda n: n.replace("— kizuna.example/audit ", "— kizuna+x "), "holds '\\+'"),
    ],
)
def test_bad_notes_are_format_errors(mangle: object, message: str) -> None:
    note = mangle(sign(CHECKPOINT, KEY))  # type: ignore[operator]
    with pytest.raises(CheckpointFormatError, match=message):
        open_note(note, KEY.public)


def test_an_altered_note_fails_its_signature() -> None:
    note = sign(CHECKPOINT, KEY).replace("1204", "1205")
    with pytest.raises(CheckpointSignatureError, match=r"trusted key kizuna.example/audit .* not"):
        open_note(note, KEY.public)


def test_a_note_signed_by_another_key_is_untrusted() -> None:
    other = SigningKey.generate(ORIGIN)
    with pytest.raises(CheckpointSignatureError, match="no trusted key signed the note"):
        open_note(sign(CHECKPOINT, other), KEY.public)
    impostor = SigningKey.generate("someone.else")
    with pytest.raises(CheckpointSignatureError, match=r"signed by someone.else"):
        open_note(sign(CHECKPOINT, impostor), KEY.public)


def test_unknown_signatures_are_ignored_and_known_ones_all_checked() -> None:
    witness = SigningKey.generate("witness.example")
    note = sign(CHECKPOINT, KEY)
    cosigned = note + sign(CHECKPOINT, witness).split("\n\n")[1]
    assert open_note(cosigned, KEY.public) == CHECKPOINT
    assert open_note(cosigned, witness.public) == CHECKPOINT
    assert open_note(cosigned, [witness.public, KEY.public]) == CHECKPOINT
    broken = cosigned[:-4] + ("A" if cosigned[-4] != "A" else "B") + cosigned[-3:]
    with pytest.raises(CheckpointSignatureError, match=r"witness.example"):
        open_note(broken, [KEY.public, witness.public])
    twice = note + note.split("\n\n")[1]
    with pytest.raises(CheckpointFormatError, match="signed the note twice"):
        open_note(twice, KEY.public)


def test_rotated_keys_verify_with_either() -> None:
    new_key = SigningKey.generate(ORIGIN)
    assert open_note(sign(CHECKPOINT, new_key), [KEY.public, new_key.public]) == CHECKPOINT


def test_origin_is_checked_when_given() -> None:
    with pytest.raises(CheckpointFormatError, match=r"not the expected 'other.example/log'"):
        open_note(sign(CHECKPOINT, KEY), KEY.public, origin="other.example/log")


def test_checkpoint_values_are_checked() -> None:
    assert (
        Checkpoint(ORIGIN, 0, EMPTY_ROOT)
        .body()
        .endswith("\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
    )
    for origin, size, root in [
        ("", 1, ROOT),
        ("a\nb", 1, ROOT),
        (ORIGIN, -1, ROOT),
        (ORIGIN, 1, b""),
    ]:
        with pytest.raises(ValueError, match=r"checkpoint|origin"):
            Checkpoint(origin, size, root)
    with pytest.raises(ValueError, match="ends with a newline"):
        sign_note("no newline", KEY)
    assert issubclass(CheckpointFormatError, CheckpointError)
    assert issubclass(CheckpointError, ValueError)
