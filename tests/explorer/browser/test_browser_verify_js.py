"""verify.js in headless Chromium, on pages that follow the verify-data contract.

The pages are served by a static server with the explorer's CSP, so these tests pin verify.js
itself; test_browser_explorer.py runs the same checks on the explorer's real pages.
"""

import base64
import json

import pytest
from browser_support import TLOG_DATA, NoteKey, SignedTree, browser_verdict, canonical, verify_page
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from eth_account.messages import encode_defunct

pytestmark = pytest.mark.browser

ORIGIN = "example.org/teelog"


def attestation_entry(node: str, mrtd: str) -> bytes:
    """An attestation entry shaped as docs/entries.md (verify.js reads only its bytes)."""
    return canonical(
        {
            "type": "attestation",
            "v": 1,
            "node": node,
            "url": f"https://{node}.example/",
            "format": "vllm-proxy",
            "source": "poll",
            "observed_at": "2026-04-03T12:00:00Z",
            "verified_at": "2026-04-03T12:00:00Z",
            "nonce": "ab" * 32,
            "status": "verified",
            "attestations": [],
            "blobs": {"report": "cd" * 32, "collateral": []},
            "measurements_hint": mrtd,
        }
    )


def receipt_entry(account, text: str, *, signer=None, ed25519: Ed25519PrivateKey | None = None):
    """A receipt entry whose ECDSA signature is by `signer` (default: the claimed account)."""
    sig = (signer or account).sign_message(encode_defunct(text=text)).signature
    signatures = {"ecdsa": {"signing_address": account.address, "signature": "0x" + sig.hex()}}
    if ed25519 is not None:
        signatures["ed25519"] = {
            "signing_address": ed25519.public_key().public_bytes_raw().hex(),
            "signature": ed25519.sign(text.encode()).hex(),
        }
    return canonical(
        {
            "type": "receipt",
            "v": 1,
            "node": "node-1",
            "node_instance": "j-1",
            "seq": 7,
            "chat_id": "chatcmpl-1",
            "model": "openai/gpt-oss-120b",
            "text": text,
            "request_sha256": text[:64],
            "response_sha256": text[65:],
            "signed_at": "2026-04-03T12:00:00Z",
            "observed_at": "2026-04-03T12:00:01Z",
            "signatures": signatures,
            "attestation_index": 0,
            "status": "verified",
            "checks": [],
        }
    )


RECEIPT_TEXT = "a1" * 32 + ":" + "b2" * 32


@pytest.fixture(scope="module")
def log():
    """Eleven entries (an odd size, so proofs mix left and right siblings), one key."""
    entries = [attestation_entry(f"node-{i}", f"{i:02x}" * 48) for i in range(11)]
    return SignedTree(NoteKey(ORIGIN), entries)


@pytest.fixture(scope="module")
def signer():
    return Account.from_key(b"\x11" * 32)


@pytest.fixture(scope="module")
def receipt_log(signer):
    ed = Ed25519PrivateKey.from_private_bytes(b"\x22" * 32)
    entries = [
        attestation_entry("node-1", "00" * 48),
        receipt_entry(signer, RECEIPT_TEXT, ed25519=ed),
        receipt_entry(signer, RECEIPT_TEXT, signer=Account.from_key(b"\x33" * 32)),
    ]
    return SignedTree(NoteKey(ORIGIN), entries)


def serve(static_server, name: str, data) -> str:
    return static_server.add(f"/entries/{name}", verify_page(data))


def result_text(page) -> str:
    return page.inner_text("#browser-verify")


def flip_b64(value: str, byte: int = 0) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[byte] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


# --- the JS functions against the published vectors ---------------------------------------------


@pytest.fixture
def module_page(page, static_server):
    page.goto(static_server.add("/blank", "<!doctype html><title>blank</title>"))
    page.evaluate("async () => { window.V = await import('/static/js/verify.js'); }")
    return page


def test_inclusion_walk_agrees_with_all_transparency_dev_probes(module_page):
    probes = json.loads((TLOG_DATA / "merkle_inclusion_probes.json").read_text())["probes"]
    args = [
        {
            "index": str(p["leafIdx"]),
            "size": str(p["treeSize"]),
            "leaf": p["leafHash"] or "",
            "root": p["root"] or "",
            "proof": p["proof"] or [],
        }
        for p in probes
    ]
    rejected = module_page.evaluate(
        """async (probes) => {
            const out = [];
            for (const p of probes) {
              const b = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
              let ok = false;
              try {
                const root = await V.rootFromInclusionProof(
                  BigInt(p.index), BigInt(p.size), b(p.leaf), p.proof.map(b));
                ok = V.hex(root) === V.hex(b(p.root));
              } catch (e) {
                if (!(e instanceof V.VerifyError)) throw e;
              }
              out.push(!ok);
            }
            return out;
        }""",
        args,
    )
    assert rejected == [p["wantErr"] for p in probes]
    assert rejected.count(False) >= 5 and rejected.count(True) >= 5  # both outcomes exercised


def test_note_signature_check_agrees_with_the_go_sumdb_open_vectors(module_page):
    vectors = json.loads((TLOG_DATA / "signed_note.json").read_text())
    keys = vectors["keys"]
    cases = [
        {"note": c["note"], "vkeys": [keys[n]["vkey"] for n in c["trusted"]], "want": c["want"]}
        for c in vectors["open_vectors"]
    ]
    got = module_page.evaluate(
        """async (cases) => {
            const out = [];
            for (const c of cases) {
              let ok = false;
              try {
                const note = V.parseNote(c.note);
                for (const vk of c.vkeys) await V.verifyNoteSignature(note, await V.parseVkey(vk));
                ok = c.vkeys.length > 0;
              } catch (e) {
                if (!(e instanceof V.VerifyError)) throw e;
              }
              out.push(ok ? 'ok' : 'error');
            }
            return out;
        }""",
        cases,
    )
    assert got == [c["want"] for c in cases]


def test_vkey_with_a_wrong_key_id_is_rejected(module_page):
    good = json.loads((TLOG_DATA / "signed_note.json").read_text())["keys"]["PeterNeumann"]["vkey"]
    bad = good.replace("+c74f20a3+", "+c74f20a4+")
    message = module_page.evaluate(
        "async (vk) => { try { await V.parseVkey(vk); return 'accepted'; }"
        " catch (e) { return e.message; } }",
        bad,
    )
    assert "key id does not match" in message


def test_eip191_recovery_matches_eth_account(module_page, signer):
    sig = signer.sign_message(encode_defunct(text=RECEIPT_TEXT)).signature.hex()
    got = module_page.evaluate("([t, s]) => V.recoverEip191Address(t, s)", [RECEIPT_TEXT, sig])
    assert got == signer.address.lower()


# --- whole pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 5, 10])
def test_genuine_entry_turns_green_and_names_the_key_checked(page, static_server, log, index):
    url = serve(static_server, f"genuine-{index}", log.verify_data(index))
    assert browser_verdict(page, url) == "ok"
    text = result_text(page)
    assert f"key id {log.key.key_id.hex()}" in text
    assert "tree size 11" in text
    assert page.js_errors == []


def _tamper_proof(d):
    d["inclusion_proof"][1] = flip_b64(d["inclusion_proof"][1])


def _tamper_entry(d):
    d["entry_b64"] = flip_b64(d["entry_b64"], 10)


def _tamper_index(d):
    d["index"] = 4


def _tamper_root(d):
    body, _, sigs = d["checkpoint"].partition("\n\n")
    origin, size, root = body.split("\n")
    d["checkpoint"] = f"{origin}\n{size}\n{flip_b64(root)}\n\n{sigs}"


def _tamper_size(d):
    d["checkpoint"] = d["checkpoint"].replace("\n11\n", "\n12\n", 1)


def _tamper_signature(d):
    head, _, line = d["checkpoint"].rstrip("\n").rpartition(" ")
    d["checkpoint"] = f"{head} {flip_b64(line, 40)}\n"


def _short_proof(d):
    d["inclusion_proof"].pop()


def _foreign_key(d):
    d["vkey"] = NoteKey(ORIGIN).vkey  # same log name, another key: the signature is not by it


def _missing_proof(d):
    del d["inclusion_proof"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_tamper_proof, "not the checkpoint root"),
        (_tamper_entry, "not the checkpoint root"),
        (_tamper_index, "not the checkpoint root"),
        (_tamper_root, "does not verify"),
        (_tamper_size, "does not verify"),
        (_tamper_signature, "does not verify"),
        (_short_proof, "too short"),
        (_foreign_key, "no signature by"),
        (_missing_proof, "not a list"),
    ],
)
def test_tampered_data_turns_red_and_says_why(page, static_server, log, tamper, reason):
    data = log.verify_data(6)
    tamper(data)
    url = serve(static_server, f"tampered-{tamper.__name__}", data)
    assert browser_verdict(page, url) == "fail"
    assert reason in result_text(page)
    assert page.js_errors == []


def test_non_json_verify_data_turns_red(page, static_server):
    url = serve(static_server, "garbage", "{not json")
    assert browser_verdict(page, url) == "fail"
    assert "not JSON" in result_text(page)


def test_genuine_receipt_verifies_both_signatures(page, static_server, receipt_log, signer):
    data = receipt_log.verify_data(1)
    entry = json.loads(base64.b64decode(data["entry_b64"]))
    data["receipt"] = {"text": entry["text"], **entry["signatures"]["ecdsa"]}
    url = serve(static_server, "receipt-ok", data)
    assert browser_verdict(page, url) == "ok"
    text = result_text(page)
    assert f"signed by {signer.address.lower()}" in text
    assert "Ed25519" in text


def test_receipt_signed_by_another_key_turns_red(page, static_server, receipt_log, signer):
    url = serve(static_server, "receipt-forged", receipt_log.verify_data(2))
    assert browser_verdict(page, url) == "fail"
    assert f"not to the signing address {signer.address}" in result_text(page)


def test_receipt_claim_differing_from_the_logged_entry_turns_red(page, static_server, receipt_log):
    data = receipt_log.verify_data(1)
    entry = json.loads(base64.b64decode(data["entry_b64"]))
    data["receipt"] = {**entry["signatures"]["ecdsa"], "text": "c3" * 32 + ":" + "d4" * 32}
    url = serve(static_server, "receipt-claim", data)
    assert browser_verdict(page, url) == "fail"
    assert "differs from the receipt in the logged entry" in result_text(page)


def test_receipt_claim_on_an_attestation_entry_turns_red(page, static_server, receipt_log, signer):
    data = receipt_log.verify_data(0)
    data["receipt"] = {"text": RECEIPT_TEXT, "signature": "0x00", "signing_address": signer.address}
    url = serve(static_server, "receipt-on-attestation", data)
    assert browser_verdict(page, url) == "fail"
    assert "not one" in result_text(page)


def test_pinned_key_is_enforced_until_forgotten(page, static_server, log):
    genuine = serve(static_server, "pin-genuine", log.verify_data(3))
    assert browser_verdict(page, genuine) == "ok"
    page.click("text=Pin this log key")
    page.wait_for_selector("#browser-verify[data-browser-verify=ok] >> text=pinned in this browser")

    # Another server presents its own log under the same name, consistently signed by its key.
    impostor = SignedTree(NoteKey(ORIGIN), log.entries)
    url = serve(static_server, "pin-impostor", impostor.verify_data(3))
    assert browser_verdict(page, url) == "fail"
    assert "differs from the key you pinned" in result_text(page)

    page.click("text=Forget pinned key")
    page.wait_for_selector("#browser-verify[data-browser-verify='ok']")


def test_hostile_entry_text_is_shown_inert(page, static_server):
    hostile = canonical({"type": "attestation", "node": "</script><script>alert(1)</script>"})
    url = serve(static_server, "hostile", SignedTree(NoteKey(ORIGIN), [hostile]).verify_data(0))
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    assert browser_verdict(page, url) == "ok"
    assert dialogs == []
    assert page.js_errors == []
