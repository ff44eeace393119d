"""``teelog model encrypt|decrypt|verify``: encrypted model files (docs/models.md).

Exit status: 0 done or verified, 1 a check failed (tag, digest, signature, size, wrong key),
2 unusable input (arguments, key files, a malformed manifest, a non-empty OUT_DIR).
"""

from __future__ import annotations

import argparse
import base64
import sys
from datetime import UTC, datetime
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2
_EXITS = "Exit 0 done, 1 a check failed, 2 unusable input."


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teelog model ...`` to the top-level parser."""
    model = sub.add_parser(
        "model",
        help="encrypt, decrypt or verify model files (Tink streaming AEAD, signed manifest)",
    )
    cmds = model.add_subparsers(dest="model_command", metavar="COMMAND", required=True)

    p = cmds.add_parser(
        "encrypt",
        help="encrypt every file of SRC_DIR into OUT_DIR and write manifest.json",
        description=(
            "Encrypt every file of SRC_DIR into OUT_DIR (same relative paths) in Tink's "
            "streaming AEAD format AES256_GCM_HKDF_1MB, bound to model, version and path, and "
            "write OUT_DIR/manifest.json. A new key is written to --key-out (32 random bytes, "
            f"mode 0600) unless --key names an existing one. {_EXITS}"
        ),
    )
    p.add_argument("src_dir", type=Path, metavar="SRC_DIR")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="new or empty directory")
    p.add_argument("--model", required=True, metavar="NAME", help="model name")
    p.add_argument(
        "--version",
        metavar="V",
        help="model version (default: the UTC time, e.g. 20261202T060000Z)",
    )
    p.add_argument(
        "--key-out",
        type=Path,
        metavar="KEYFILE",
        help="write the model key here (never over an existing file); required without --key",
    )
    p.add_argument("--key", type=Path, metavar="KEYFILE", help="use this existing model key")
    p.add_argument(
        "--owner-key",
        type=Path,
        metavar="KEYFILE",
        help="sign the manifest with this Ed25519 key (PKCS#8 PEM)",
    )
    p.set_defaults(func=cmd_encrypt)

    p = cmds.add_parser(
        "decrypt",
        help="decrypt ENC_DIR into OUT_DIR, verifying every segment",
        description=(
            "Decrypt every file listed in ENC_DIR/manifest.json into OUT_DIR. Every segment "
            "tag is verified; truncation, reordering, a swapped or renamed file and a wrong "
            "key are refused, and no plaintext file is left behind on failure. "
            f"Plaintext files are created with mode 0600. {_EXITS}"
        ),
    )
    p.add_argument("enc_dir", type=Path, metavar="ENC_DIR")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--key", required=True, type=Path, metavar="KEYFILE", help="model key file")
    p.set_defaults(func=cmd_decrypt)

    p = cmds.add_parser(
        "verify",
        help="check the manifest signature and ciphertext digests of ENC_DIR (no key needed)",
        description=(
            "Check ENC_DIR against its manifest.json: every ciphertext's size and SHA-256, no "
            "unlisted files, and with --owner-vkey the owner's Ed25519 signature. Prints the "
            f"manifest digest, the model version's identity. {_EXITS}"
        ),
    )
    p.add_argument("enc_dir", type=Path, metavar="ENC_DIR")
    p.add_argument(
        "--owner-vkey",
        type=Path,
        metavar="FILE",
        help="the owner's Ed25519 public key (SubjectPublicKeyInfo PEM)",
    )
    p.set_defaults(func=cmd_verify)


def _fail(msg: str, code: int) -> int:
    print(f"teelog model: {msg}", file=sys.stderr)
    return code


def cmd_encrypt(args: argparse.Namespace) -> int:
    from . import (
        ModelInputError,
        ModelIntegrityError,
        encrypt_model,
        generate_key,
        key_id,
        manifest_digest,
        read_key_file,
        read_owner_signing_key,
        write_key_file,
    )

    version = args.version or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    wrote_key = done = False
    try:
        if args.key is None and args.key_out is None:
            raise ModelInputError("give --key-out KEYFILE for a new key, or --key KEYFILE")
        owner_key = read_owner_signing_key(args.owner_key) if args.owner_key else None
        key = read_key_file(args.key) if args.key is not None else generate_key()
        if args.key_out is not None and not (
            args.key is not None and args.key_out.resolve() == args.key.resolve()
        ):
            write_key_file(args.key_out, key)
            wrote_key = True
        manifest = encrypt_model(
            args.src_dir,
            args.out_dir,
            model=args.model,
            version=version,
            key=key,
            owner_key=owner_key,
        )
        done = True
    except (ModelInputError, ModelIntegrityError, OSError) as e:
        code = EXIT_FAILED if isinstance(e, ModelIntegrityError) else EXIT_UNUSABLE
        return _fail(str(e), code)
    finally:
        if wrote_key and not done:
            args.key_out.unlink()  # the key of a model that was not written is of no use
    print(f"model           {manifest.model}")
    print(f"version         {manifest.version}")
    print(f"files           {len(manifest.files)}")
    print(f"key id          {key_id(key)}")
    print(f"manifest digest {manifest_digest(manifest)}")
    print(f"signed          {'yes' if manifest.signature else 'no'}")
    return EXIT_OK


def cmd_decrypt(args: argparse.Namespace) -> int:
    from . import (
        ModelInputError,
        ModelIntegrityError,
        decrypt_model,
        manifest_digest,
        read_key_file,
    )

    try:
        key = read_key_file(args.key)
        manifest = decrypt_model(args.enc_dir, args.out_dir, key)
    except ModelInputError as e:
        return _fail(str(e), EXIT_UNUSABLE)
    except ModelIntegrityError as e:
        return _fail(f"{e}; nothing was written to {args.out_dir}", EXIT_FAILED)
    except OSError as e:
        return _fail(f"{e.filename}: {e.strerror}; nothing was written", EXIT_UNUSABLE)
    total = sum(f.plaintext_size for f in manifest.files)
    print(
        f"decrypted {len(manifest.files)} files ({total} bytes) of {manifest.model} "
        f"{manifest.version} into {args.out_dir}"
    )
    print(f"manifest digest {manifest_digest(manifest)}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from . import ModelInputError, read_owner_verify_key, verify_model

    try:
        vkey = read_owner_verify_key(args.owner_vkey) if args.owner_vkey else None
        report = verify_model(args.enc_dir, vkey)
    except ModelInputError as e:
        return _fail(str(e), EXIT_UNUSABLE)
    m = report.manifest
    print(f"model           {m.model}")
    print(f"version         {m.version}")
    print(f"key id          {m.key_id}")
    print(f"manifest digest {report.digest}")
    if vkey is None:
        signer = (
            f"signed by {base64.b64encode(m.signature.public_key).decode()}, not checked"
            if m.signature
            else "unsigned"
        )
        print(f"skip  signature: {signer} (give --owner-vkey to check the owner's signature)")
    for check in report.checks:
        print(f"{'pass' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    return EXIT_OK if report.ok else EXIT_FAILED
