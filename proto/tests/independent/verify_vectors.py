#!/usr/bin/env python3
"""Verify kurir's protocol test vectors with implementations independent of kurir.

Uses cbor2 (CBOR), cryptography (Ed25519, SHA-256) and pycose (COSE_Sign1), and
rebuilds every derived value by hand from docs/PROTOCOL.md: key ids, body and
envelope digests, the protected header, the Sig_structure, the parcel, and for
envelopes and receipts signed in batches (§6.1, §10.1) the leaf hash, the
inclusion path and the batch root. Vectors of type "envelope-batch-refused" and
"receipt-batch-refused" must fail verification.

    python3 verify_vectors.py ../vectors/envelopes.json

Prints one line per check group and a final "N passed, N failed" line; exits 1
if anything failed.
"""
import hashlib
import json
import sys
import uuid

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pycose.keys.okp import OKPKey
from pycose.messages import Sign1Message

KEY_ID_TAG = b"kurir/v1/key-id\x00"
BODY_TAG = b"kurir/v1/body\x00"
ENVELOPE_TAG = b"kurir/v1/envelope\x00"
CT_HEADER = "application/kurir-header+cbor"
CT_HEADER_BATCH = "application/kurir-header-batch+cbor"
CT_RECEIPT = "application/kurir-receipt+cbor"
CT_RECEIPT_BATCH = "application/kurir-receipt-batch+cbor"
LABEL_IN_BATCH = -65537

HEADER_KEYS = {
    0: "v", 1: "id", 2: "kind", 3: "from", 4: "to", 5: "created_at", 6: "expires_at",
    7: "case_id", 8: "in_reply_to", 9: "procedure", 10: "handling", 11: "legal_basis",
    12: "body_digest",
}
RECEIPT_KEYS = {
    0: "v", 1: "msg_id", 2: "envelope_digest", 3: "sender", 4: "receiver", 5: "received_at",
    6: "status", 7: "reason", 8: "detail", 9: "log_index", 10: "leaf_hash",
}

passed = 0
failed = 0


def check(name, ok):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"  FAIL {name}")


def text_head(s):
    """CBOR head + bytes of a text string, written by hand (RFC 8949 §3)."""
    b = s.encode()
    if len(b) < 24:
        return bytes([0x60 | len(b)]) + b
    if len(b) < 256:
        return bytes([0x78, len(b)]) + b
    raise ValueError("long content type")


def expected_protected(ct, kid):
    # {1: -8, 3: ct, 4: h'kid'}: keys in bytewise order, shortest forms.
    return b"\xa3\x01\x27\x03" + text_head(ct) + b"\x04\x50" + kid


def canonical(obj):
    # cbor2's canonical mode sorts map keys length-first (RFC 7049); for the
    # keys kurir uses (integers 0..23, text keys under 24 bytes) that is the
    # same order as RFC 8949 §4.2.1 bytewise sorting.
    return cbor2.dumps(obj, canonical=True)


def json_value(field, value):
    """Header/receipt CBOR value in the JSON vectors' notation."""
    if field in ("id", "in_reply_to", "msg_id"):
        return str(uuid.UUID(bytes=value))
    if isinstance(value, bytes):
        return value.hex()
    return value


def verify_sign1(v, ct, payload_hex_field, unprotected_label=None):
    seed = bytes.fromhex(v["signing_key_seed"])
    pk = bytes.fromhex(v["public_key"])
    derived = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    check("public key from seed", derived == pk)
    kid = hashlib.sha256(KEY_ID_TAG + pk).digest()[:16]
    check("key id = SHA-256(tag || pk)[:16]", kid.hex() == v["key_id"])

    cose = bytes.fromhex(v["envelope"] if "envelope" in v else v["receipt_cose"])
    item = cbor2.loads(cose)
    check("COSE tag 18", isinstance(item, cbor2.CBORTag) and item.tag == 18)
    protected, unprotected, payload, signature = item.value
    check("protected header bytes", protected == expected_protected(ct, kid))
    check("protected header map", cbor2.loads(protected) == {1: -8, 3: ct, 4: kid})
    if unprotected_label is None:
        check("unprotected header empty", unprotected == {})
    else:
        check(f"unprotected header holds label {unprotected_label} alone",
              list(unprotected) == [unprotected_label])
    check("payload", payload == bytes.fromhex(v[payload_hex_field]))
    sig_structure = cbor2.dumps(["Signature1", protected, b"", payload])
    check("Sig_structure", sig_structure.hex() == v["sig_structure"])
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(signature, sig_structure)
        check("Ed25519 signature (cryptography)", True)
    except InvalidSignature:
        check("Ed25519 signature (cryptography)", False)

    msg = Sign1Message.decode(cose)
    msg.key = OKPKey(crv="Ed25519", x=pk)
    check("COSE_Sign1 verifies (pycose)", msg.verify_signature())
    # The checker itself can fail: one payload bit flipped must not verify.
    tampered = Sign1Message.decode(cose)
    tampered.payload = bytes([payload[0]]) + bytes([payload[1] ^ 1]) + payload[2:]
    tampered.key = OKPKey(crv="Ed25519", x=pk)
    try:
        ok = not tampered.verify_signature()
    except Exception:
        ok = True
    check("tampered payload fails (pycose)", ok)
    return payload, unprotected


def verify_envelope(v):
    payload, _ = verify_sign1(v, CT_HEADER, "header_cbor")
    header = cbor2.loads(payload)
    check("header is canonical", canonical(header) == payload)
    check("header keys known", set(header) <= set(HEADER_KEYS))
    decoded = {HEADER_KEYS[k]: json_value(HEADER_KEYS[k], x) for k, x in header.items()}
    check("header fields match the JSON", decoded == v["header"])
    check("message id is UUIDv7", uuid.UUID(bytes=header[1]).version == 7)

    salt = bytes.fromhex(v["salt"])
    body = bytes.fromhex(v["body_cbor"])
    digest = hashlib.sha256(BODY_TAG + salt + body).digest()
    check("body digest = SHA-256(tag || salt || body)", digest.hex() == v["body_digest"])
    check("header commits to the body digest", header[12] == digest)
    check("body is canonical", canonical(cbor2.loads(body)) == body)

    envelope = bytes.fromhex(v["envelope"])
    check(
        "envelope digest",
        hashlib.sha256(ENVELOPE_TAG + envelope).hexdigest() == v["envelope_digest"],
    )
    check("parcel = [envelope, salt, body]", cbor2.dumps([envelope, salt, body]).hex() == v["parcel"])


def verify_receipt(v):
    payload, _ = verify_sign1(v, CT_RECEIPT, "payload_cbor")
    receipt = cbor2.loads(payload)
    check("receipt is canonical", canonical(receipt) == payload)
    decoded = {RECEIPT_KEYS[k]: json_value(RECEIPT_KEYS[k], x) for k, x in receipt.items()}
    check("receipt fields match the JSON", decoded == v["receipt"])


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(leaf, index, size, path):
    """RFC 9162 §2.1.3.2, step by step; None if the path has the wrong length."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            r = node(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def batch_holds(cose, pk, ct, signer, signer_key):
    """Whether a batched envelope or receipt verifies on its own (PROTOCOL.md
    §6.1, §10.1): content type `ct`, the head's field 1 and the payload's field
    `signer_key` (a header's `from`, a receipt's `receiver`) both `signer`.
    Returns the payload, or None."""
    tag = cbor2.loads(cose)
    protected, unprotected, head_bytes, signature = tag.value
    if cbor2.loads(protected).get(3) != ct or list(unprotected) != [LABEL_IN_BATCH]:
        return None
    msg = Sign1Message.decode(cose)
    msg.key = OKPKey(crv="Ed25519", x=pk)
    if not msg.verify_signature():
        return None
    head = cbor2.loads(head_bytes)
    if canonical(head) != head_bytes or set(head) != {0, 1, 2, 3} or head[0] != 1:
        return None
    item = unprotected[LABEL_IN_BATCH]
    if not (isinstance(item, list) and len(item) == 3):
        return None
    payload, index, path = item
    if not all(isinstance(h, bytes) and len(h) == 32 for h in path):
        return None
    leaf = hashlib.sha256(b"\x00" + payload).digest()
    if root_from_path(leaf, index, head[2], path) != head[3]:
        return None
    decoded = cbor2.loads(payload)
    if head[1] != signer or decoded[signer_key] != signer:
        return None
    return payload


def verify_batch_item(v, ct, payload_field, signer_field, cose_hex):
    """The head, the unprotected item, the leaf and the path of a batch vector;
    returns the payload and the head."""
    head_bytes, unprotected = verify_sign1(v, ct, "head_cbor", LABEL_IN_BATCH)
    head = cbor2.loads(head_bytes)
    b = v["batch"]
    check("batch head is canonical", canonical(head) == head_bytes)
    check(f"batch head = {{0: 1, 1: {signer_field}, 2: size, 3: root}}",
          head == {0: 1, 1: b[signer_field], 2: b["size"], 3: bytes.fromhex(b["root"])})
    payload, index, path = unprotected[LABEL_IN_BATCH]
    check("unprotected item = [payload, index, path]",
          payload.hex() == v[payload_field] and index == b["index"]
          and [h.hex() for h in path] == b["path"])
    leaf = hashlib.sha256(b"\x00" + payload).digest()
    check("leaf hash = SHA-256(0x00 || payload)", leaf.hex() == v["leaf_hash"])
    check("inclusion path leads to the signed root (RFC 9162 2.1.3.2)",
          root_from_path(leaf, index, head[2], path) == head[3])
    # The checker itself can fail: another index must not verify.
    cose = cbor2.loads(bytes.fromhex(cose_hex))
    protected, _, head_b, sig = cose.value
    moved = {LABEL_IN_BATCH: [payload, (index + 1) % head[2], path]}
    forged = cbor2.dumps(cbor2.CBORTag(18, [protected, moved, head_b, sig]))
    return payload, head, forged


def verify_receipt_batch(v):
    payload, head, forged = verify_batch_item(
        v, CT_RECEIPT_BATCH, "payload_cbor", "receiver", v["receipt_cose"])
    receipt = cbor2.loads(payload)
    check("receipt is canonical", canonical(receipt) == payload)
    decoded = {RECEIPT_KEYS[k]: json_value(RECEIPT_KEYS[k], x) for k, x in receipt.items()}
    check("receipt fields match the JSON", decoded == v["receipt"])
    check("receipt names the batch's receiver", receipt[4] == head[1])
    pk = bytes.fromhex(v["public_key"])
    receiver = v["batch"]["receiver"]
    check("batched receipt verifies",
          batch_holds(bytes.fromhex(v["receipt_cose"]), pk, CT_RECEIPT_BATCH, receiver, 4)
          is not None)
    check("another index fails",
          head[2] == 1 or batch_holds(forged, pk, CT_RECEIPT_BATCH, receiver, 4) is None)


def verify_envelope_batch(v):
    payload, head, forged = verify_batch_item(
        v, CT_HEADER_BATCH, "header_cbor", "from", v["envelope"])
    header = cbor2.loads(payload)
    check("header is canonical", canonical(header) == payload)
    check("header keys known", set(header) <= set(HEADER_KEYS))
    decoded = {HEADER_KEYS[k]: json_value(HEADER_KEYS[k], x) for k, x in header.items()}
    check("header fields match the JSON", decoded == v["header"])
    check("header names the batch's sender", header[3] == head[1])
    pk = bytes.fromhex(v["public_key"])
    sender = v["batch"]["from"]
    envelope = bytes.fromhex(v["envelope"])
    check("batched envelope verifies",
          batch_holds(envelope, pk, CT_HEADER_BATCH, sender, 3) is not None)
    check("another index fails",
          head[2] == 1 or batch_holds(forged, pk, CT_HEADER_BATCH, sender, 3) is None)
    salt = bytes.fromhex(v["salt"])
    body = bytes.fromhex(v["body_cbor"])
    digest = hashlib.sha256(BODY_TAG + salt + body).digest()
    check("body digest = SHA-256(tag || salt || body)", digest.hex() == v["body_digest"])
    check("header commits to the body digest", header[12] == digest)
    check(
        "envelope digest",
        hashlib.sha256(ENVELOPE_TAG + envelope).hexdigest() == v["envelope_digest"],
    )
    check("parcel = [envelope, salt, body]", cbor2.dumps([envelope, salt, body]).hex() == v["parcel"])


def verify_receipt_batch_refused(v):
    pk = bytes.fromhex(v["public_key"])
    try:
        held = batch_holds(bytes.fromhex(v["receipt_cose"]), pk, CT_RECEIPT_BATCH,
                           v["receiver"], 4) is not None
    except Exception:
        held = False
    check("tampered batched receipt is refused", not held)


def verify_envelope_batch_refused(v):
    pk = bytes.fromhex(v["public_key"])
    try:
        envelope, _salt, _body = cbor2.loads(bytes.fromhex(v["parcel"]))
        held = batch_holds(envelope, pk, CT_HEADER_BATCH, v["from"], 3) is not None
    except Exception:
        held = False
    check("tampered batched envelope is refused", not held)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    tags = data["domain_tags"]
    check("domain tags", [tags["key_id"], tags["body"], tags["envelope"]]
          == [KEY_ID_TAG.hex(), BODY_TAG.hex(), ENVELOPE_TAG.hex()])
    for v in data["vectors"]:
        before = failed
        {
            "envelope": verify_envelope,
            "receipt": verify_receipt,
            "receipt-batch": verify_receipt_batch,
            "receipt-batch-refused": verify_receipt_batch_refused,
            "envelope-batch": verify_envelope_batch,
            "envelope-batch-refused": verify_envelope_batch_refused,
        }[v["type"]](v)
        print(f"{'ok  ' if failed == before else 'FAIL'} {v['type']}: {v['name']}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
