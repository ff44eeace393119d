"""teelog's key broker: attestation-gated release of model keys, every decision on the log.

It speaks the Trustee KBS attestation protocol 0.4.0 (``POST /kbs/v0/auth``, ``POST
/kbs/v0/attest``, ``GET /kbs/v0/resource/<repo>/<type>/<tag>``) so that Confidential Containers
guest tooling can use it, verifies evidence with :mod:`teelog.attestation`, evaluates the model
owner's declarative policy and appends every release and every denial to the log as a
``key_release`` entry before the key leaves (docs/broker.md).
"""
