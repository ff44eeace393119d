"""The node's signers produce exactly what independent Ethereum tooling produces."""

from __future__ import annotations

import random

from eth_account import Account
from eth_account.messages import encode_defunct
from teelog.attestation.signing import EcdsaSigner, recover_ecdsa_address


def test_ecdsa_signatures_are_byte_identical_to_eth_account_personal_sign() -> None:
    rng = random.Random(20261122)
    for _ in range(50):
        key = rng.randbytes(32)
        text = f"{rng.randbytes(32).hex()}:{rng.randbytes(32).hex()}"
        ours = EcdsaSigner(key)
        theirs = Account.sign_message(encode_defunct(text=text), private_key=key)
        assert ours.sign(text) == "0x" + theirs.signature.hex().removeprefix("0x")
        assert ours.address == Account.from_key(key).address
        assert recover_ecdsa_address(text, ours.sign(text)).lower() == ours.address.lower()
