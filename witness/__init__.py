"""A C2SP transparency-log witness (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature).

``teelog witness init|vkey|serve``: an Ed25519 cosigner that checks each submitted checkpoint
against the latest one it cosigned for that log and cosigns only consistent ones.  It imports
only ``teelog.log`` (notes, checkpoints, Merkle proofs), so it can witness any C2SP log.
"""
