"""Optional signatures on evidence records: who made a record, not only that it is intact.

The digests prove integrity, not authorship: anyone who edits a record can recompute them. A
signature made with the author's private key (an Ed25519 key, or the SSH key they already
have: ssh-ed25519, ecdsa-sha2-nistp256/384/521, RSA) over the record's seal proves the record
left their hands as it is. The seal is the SHA-256 of the canonical record without its digests
and signatures, so signing it signs every byte of content.

Each signature is kept in the record's optional top-level `signatures` list (outside the seal,
so signatures can be added one after another):

    {"algorithm": "ssh-ed25519", "public_key": "ssh-ed25519 AAAA... comment",
     "fingerprint": "SHA256:...", "signer": "free text", "signed_at": "...Z",
     "signature": "<base64>"}

What is signed is the RFC 8785 canonical JSON of {"purpose": "forgeplanner.evidence
signature v1", "seal", "fingerprint", "signer", "signed_at"}: the context string keeps a
signature over this from being replayed as a signature over anything else, and the signer's
name and date are covered too. Keys are read and signatures made and checked by the
`cryptography` package; fingerprints are OpenSSH's (`ssh-keygen -l`: SHA256 of the key blob,
base64 without padding), so a user can match them against `ssh-keygen -lf key.pub`.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785

from forgeplanner.errors import ForgePlannerError

PURPOSE = "forgeplanner.evidence signature v1"
MAX_KEY_BYTES = 1 << 16


class SigningError(ForgePlannerError):
    pass


def _crypto():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    return hashes, serialization, ec, ed25519, padding, rsa


def load_private_key(path: str | os.PathLike[str], passphrase: bytes | None = None) -> Any:
    """An Ed25519, ECDSA or RSA private key from an OpenSSH or PEM file."""
    from forgeplanner.fileio import read_input

    _, serialization, ec, ed25519, _, rsa = _crypto()
    data = read_input(path, MAX_KEY_BYTES, "private key file")
    try:
        if b"BEGIN OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, passphrase)
        else:
            key = serialization.load_pem_private_key(data, passphrase)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase not needed
        raise SigningError(
            f"{path}: {' '.join(str(exc).split())} (set FORGEPLANNER_KEY_PASSPHRASE)"
        ) from None
    except Exception as exc:  # cryptography raises ValueError, UnsupportedAlgorithm, ...
        raise SigningError(
            f"{path}: not a usable private key ({' '.join(str(exc).split())[:120]})"
        ) from None
    if not isinstance(
        key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)
    ):
        raise SigningError(f"{path}: {type(key).__name__} keys are not supported; use Ed25519")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise SigningError(f"{path}: a {key.key_size}-bit RSA key is too weak; use Ed25519")
    return key


def load_public_key(text_or_path: str) -> Any:
    """A public key from an OpenSSH line ("ssh-ed25519 AAAA... comment"), a .pub file, or a
    PEM public key file."""
    from forgeplanner.fileio import read_input

    _, serialization, _, _, _, _ = _crypto()
    text = text_or_path.strip()
    if not text.startswith(("ssh-", "ecdsa-")):
        data = read_input(text_or_path, MAX_KEY_BYTES, "public key file")
    else:
        data = text.encode()
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return serialization.load_pem_public_key(data)
        return serialization.load_ssh_public_key(data.strip().splitlines()[0])
    except Exception as exc:  # ValueError, IndexError, UnsupportedAlgorithm
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise SigningError(
            f"signer '{shown}': not a public key ({' '.join(str(exc).split())[:100]})"
        ) from None


def openssh_public(key: Any) -> str:
    _, serialization, _, _, _, _ = _crypto()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def fingerprint(public_key: Any) -> str:
    """OpenSSH's SHA256 fingerprint of a public key (what `ssh-keygen -l` prints)."""
    blob = base64.b64decode(openssh_public(public_key).split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _algorithm(key: Any) -> str:
    _, _, ec, ed25519, _, rsa = _crypto()
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ssh-ed25519"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa-sha2-256"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"ecdsa-sha2-nistp{key.curve.key_size}"
    raise SigningError(f"{type(key).__name__} keys are not supported")


def _ec_hash(key: Any) -> Any:
    hashes = _crypto()[0]
    # RFC 5656 section 6.2.1: the hash follows the curve size.
    return {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key.curve.key_size]


def message(seal: str, fp: str, signer: str, signed_at: str) -> bytes:
    return rfc8785.dumps(
        {
            "purpose": PURPOSE,
            "seal": seal,
            "fingerprint": fp,
            "signer": signer,
            "signed_at": signed_at,
        }
    )


def sign(seal: str, key: Any, signer: str, signed_at: str) -> dict[str, Any]:
    hashes, _, ec, ed25519, padding, rsa = _crypto()
    public = key.public_key()
    fp = fingerprint(public)
    msg = message(seal, fp, signer, signed_at)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        sig = key.sign(msg)
    elif isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    else:
        sig = key.sign(msg, ec.ECDSA(_ec_hash(key)))
    return {
        "algorithm": _algorithm(key),
        "public_key": openssh_public(public),
        "fingerprint": fp,
        "signer": signer,
        "signed_at": signed_at,
        "signature": base64.b64encode(sig).decode(),
    }


@dataclass(frozen=True)
class SignatureCheck:
    fingerprint: str
    signer: str
    ok: bool
    problem: str = ""


def check(entry: Any, seal: str, index: int) -> SignatureCheck:
    """Check one signature entry against the record's (recomputed) seal."""
    from cryptography.exceptions import InvalidSignature

    hashes, _, ec, ed25519, padding, rsa = _crypto()
    where = f"signatures[{index}]"
    fields = ("algorithm", "public_key", "fingerprint", "signer", "signed_at", "signature")
    if not isinstance(entry, dict) or set(entry) != set(fields):
        return SignatureCheck("?", "?", False, f"{where}: expected the keys {', '.join(fields)}")
    if not all(isinstance(entry[f], str) for f in fields):
        return SignatureCheck("?", "?", False, f"{where}: every field must be a string")
    try:
        public = load_public_key(entry["public_key"])
    except SigningError as exc:
        return SignatureCheck(entry["fingerprint"], entry["signer"], False, f"{where}: {exc}")
    fp = fingerprint(public)
    if fp != entry["fingerprint"]:
        return SignatureCheck(fp, entry["signer"], False, f"{where}: fingerprint altered")
    try:
        sig = base64.b64decode(entry["signature"], validate=True)
        msg = message(seal, fp, entry["signer"], entry["signed_at"])
        if _algorithm(public) != entry["algorithm"]:
            raise InvalidSignature
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(sig, msg)
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(sig, msg, ec.ECDSA(_ec_hash(public)))
        else:
            raise InvalidSignature
    except (InvalidSignature, ValueError, SigningError):
        return SignatureCheck(
            fp,
            entry["signer"],
            False,
            f"{where}: the signature by {fp} ({entry['signer'] or 'no name'}) does not match "
            "this record",
        )
    return SignatureCheck(fp, entry["signer"], True)


def passphrase_from_env() -> bytes | None:
    value = os.environ.get("FORGEPLANNER_KEY_PASSPHRASE")
    return value.encode() if value else None


def default_signer_name(key_path: str | os.PathLike[str]) -> str:
    return Path(key_path).name
