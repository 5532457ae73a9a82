"""Evidence signatures: who made a record, with Ed25519 and SSH keys (the `cryptography`
package, no mocks).

`data/signer_ed25519` is a throwaway key made for these tests with OpenSSH's `ssh-keygen -t
ed25519`; `ssh-keygen -lf data/signer_ed25519.pub` printed the fingerprint below, so the test
checks that ours is OpenSSH's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from forgeplanner.cli.main import main
from forgeplanner.errors import ForgePlannerError
from forgeplanner.evidence import signing
from forgeplanner.evidence.record import build_record, sign_record, verify_record
from tests.plan.samples import sample_plan

DATA = Path(__file__).with_name("data")
KEY = DATA / "signer_ed25519"
PUB = DATA / "signer_ed25519.pub"
SSH_KEYGEN_FINGERPRINT = "SHA256:AyuREjJP0w0b7+OYAUlDaaCfsLokKxEfXRi8in2I/NQ"
NOW = "2026-11-26T14:00:00Z"


@pytest.fixture
def record() -> dict:
    return build_record(sample_plan(), NOW)


def test_fingerprint_is_openssh_s() -> None:
    assert signing.fingerprint(signing.load_public_key(str(PUB))) == SSH_KEYGEN_FINGERPRINT
    assert signing.fingerprint(signing.load_private_key(KEY).public_key()) == (
        SSH_KEYGEN_FINGERPRINT
    )


def test_signed_record_verifies_and_names_its_signer(record) -> None:
    signed = sign_record(record, signing.load_private_key(KEY), "Ann", NOW)
    result = verify_record(signed, [signing.load_public_key(PUB.read_text())])
    assert result.ok and result.signed_by == [SSH_KEYGEN_FINGERPRINT]
    assert verify_record(signed).ok  # a signature does not change what the digests cover


def test_any_change_breaks_the_signature(record) -> None:
    key = signing.load_private_key(KEY)
    signed = sign_record(record, key, "Ann", NOW)
    forged_name = json.loads(json.dumps(signed))
    forged_name["signatures"][0]["signer"] = "Mallory"
    result = verify_record(forged_name, [key.public_key()])
    assert not result.ok and any("does not match this record" in p for p in result.problems)
    # Content edited: the seal moves, and the signature over the old seal no longer matches.
    tampered = json.loads(json.dumps(signed))
    tampered["plan"]["plan"]["notes"] = "edited"
    result = verify_record(tampered, [key.public_key()])
    assert not result.ok and any("signatures[0]" in p for p in result.problems)
    # ... even when every digest and the seal are rebuilt, as anyone can: the digests then
    # all match, and only the signature tells.
    from forgeplanner.evidence import record as rec

    digests = tampered["digests"]
    digests["sections"] = {n: rec.sha256_hex(d) for n, d in rec.sections(tampered).items()}
    digests["seal"] = rec.sha256_hex(rec.canonical(rec._without_digests(tampered)))
    result = verify_record(tampered)
    assert not result.ok and result.problems == [
        f"signatures[0]: the signature by {SSH_KEYGEN_FINGERPRINT} (Ann) does not match this record"
    ]


def test_wrong_signer_and_unsigned_records_fail_with_signer(record) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    signed = sign_record(record, other, "someone", NOW)
    result = verify_record(signed, [signing.load_public_key(str(PUB))])
    assert not result.ok and result.problems[-1].startswith(
        f"not signed by {SSH_KEYGEN_FINGERPRINT}"
    )
    result = verify_record(record, [signing.load_public_key(str(PUB))])
    assert not result.ok and "(no valid signature)" in result.problems[-1]


def test_an_altered_record_is_not_signed(record) -> None:
    record["created_at"] = "2030-01-01T00:00:00Z"
    with pytest.raises(ForgePlannerError, match="not intact, refusing to sign"):
        sign_record(record, signing.load_private_key(KEY), "Ann", NOW)


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_ecdsa_and_rsa_ssh_keys(tmp_path, record, curve) -> None:
    for key in (ec.generate_private_key(curve), rsa.generate_private_key(65537, 2048)):
        path = tmp_path / "key"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
        with pytest.raises(ForgePlannerError, match="FORGEPLANNER_KEY_PASSPHRASE"):
            signing.load_private_key(path)
        loaded = signing.load_private_key(path, b"secret")
        signed = sign_record(record, loaded, "Ann", NOW)
        assert verify_record(signed, [key.public_key()]).ok


def test_weak_rsa_keys_are_refused(tmp_path) -> None:
    path = tmp_path / "weak.pem"
    path.write_bytes(
        rsa.generate_private_key(65537, 1024).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ForgePlannerError, match="1024-bit RSA key is too weak"):
        signing.load_private_key(path)


def test_cli_sign_and_verify_with_signer(tmp_path, capsys) -> None:
    plan = tmp_path / "lab.fplan"
    root = Path(__file__).resolve().parents[2]
    plan.write_bytes((root / "examples" / "70b-home-lab.fplan").read_bytes())
    out = tmp_path / "lab.evidence.json"
    assert main(["export", str(plan), "--format", "json", "--out", str(out), "--no-db"]) == 0
    assert main(["evidence", "sign", str(out), "--key", str(KEY), "--signer", "Ann"]) == 0
    assert SSH_KEYGEN_FINGERPRINT in capsys.readouterr().out
    assert main(["evidence", "verify", str(out), "--signer", str(PUB), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["signed_by"] == [SSH_KEYGEN_FINGERPRINT]
    text = out.read_text().replace('"name": "70B at home"', '"name": "70B at work"', 1)
    out.write_text(text)
    assert main(["evidence", "verify", str(out), "--signer", str(PUB)]) == 1
    err = capsys.readouterr().err
    assert "'plan.name' changed" in err and "does not match this record" in err
