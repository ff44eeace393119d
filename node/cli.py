"""``teelog node``: run the signing proxy in front of an OpenAI-compatible upstream; and
``teelog model fetch``: load an encrypted model with a key released by a broker."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``teelog node`` to the top-level parser."""
    p = sub.add_parser(
        "node",
        help="run the signing proxy (vllm-proxy API) in front of vLLM",
        description="Proxy an OpenAI-compatible upstream (vLLM), sign every response with "
        "ECDSA and Ed25519, serve TDX/GPU attestation reports and the receipts feed.",
    )
    p.add_argument("--upstream", required=True, help="upstream base URL, e.g. http://vllm:8000")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="listen port (default 8000)")
    p.add_argument("--quote-provider", default="auto",
                   choices=("auto", "configfs", "dstack", "none"),
                   help="TDX quote source (auto: dstack socket, else configfs-tsm, else none)")
    p.add_argument("--gpu-evidence", default="auto", choices=("auto", "nvml", "none"),
                   help="GPU evidence source (auto: NVML when CC GPUs are present)")
    p.add_argument("--signing-key", default="random", choices=("random", "dstack"),
                   help="random keys per start, or keys derived by the dstack agent (GetKey)")
    p.add_argument("--key-path-prefix", default="teelog",
                   help="dstack GetKey path prefix for --signing-key dstack (default teelog)")
    p.add_argument("--dstack-socket", default="/var/run/dstack.sock",
                   help="dstack guest agent socket (or http:// URL of a simulator)")
    p.add_argument("--configfs-tsm", default="/sys/kernel/config/tsm/report",
                   help="configfs-tsm report directory")
    p.add_argument("--token-env", metavar="NAME",
                   help="environment variable holding the bearer token clients must send")
    p.add_argument("--upstream-token-env", metavar="NAME",
                   help="environment variable holding a bearer token for the upstream")
    p.add_argument("--journal", default="teelog-node.sqlite",
                   help="SQLite receipt journal (default ./teelog-node.sqlite)")
    p.add_argument("--retention", type=float, metavar="DAYS", default=30.0,
                   help="keep receipts this many days (default 30; 0 keeps them forever)")
    p.add_argument("--journal-fsync", action="store_true",
                   help="fsync every receipt (survives power loss, not only crashes; slower)")
    p.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024,
                   help="largest request body accepted (default 4 MiB)")
    p.add_argument("--upstream-timeout", type=float, default=600.0,
                   help="seconds the upstream may stay silent before the request fails")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    m = p.add_argument_group(
        "model loading at start-up",
        "With --model-broker, run `teelog model fetch` with this node's quote provider and GPU "
        "evidence before serving; the node does not serve unless the model was loaded.")
    m.add_argument("--model-broker", metavar="URL", help="key broker base URL")
    m.add_argument("--model-resource", metavar="REPO/TYPE/TAG",
                   help="resource path of the model version's key")
    m.add_argument("--model-encrypted", type=Path, metavar="DIR",
                   help="the encrypted model (with manifest.json)")
    m.add_argument("--model-out", type=Path, metavar="DIR",
                   help="new or empty directory for the plaintext (a tmpfs)")
    m.add_argument("--model-owner-vkey", type=Path, metavar="FILE",
                   help="check the manifest's signature with the owner's Ed25519 key (PEM)")
    p.set_defaults(func=run_node)


def _load_model_first(args: argparse.Namespace) -> int:
    """``teelog model fetch`` for ``teelog node --model-broker``: 0 loaded, else its exit code."""
    missing = [flag for flag, value in (("--model-resource", args.model_resource),
                                        ("--model-encrypted", args.model_encrypted),
                                        ("--model-out", args.model_out)) if value is None]
    if missing:
        print(f"teelog node: --model-broker needs {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.quote_provider == "none":
        print("teelog node: --model-broker needs a TEE: --quote-provider none sends no "
              "evidence", file=sys.stderr)
        return 2
    return cmd_model_fetch(argparse.Namespace(
        broker=args.model_broker, resource=args.model_resource,
        encrypted=args.model_encrypted, out=args.model_out,
        quote_provider=None if args.quote_provider == "auto" else args.quote_provider,
        owner_vkey=args.model_owner_vkey, dstack_socket=args.dstack_socket,
        configfs_tsm=args.configfs_tsm, gpu_evidence=args.gpu_evidence, timeout=30.0,
    ))


def _secret_from_env(name: str | None, flag: str) -> str | None:
    if name is None:
        return None
    value = os.environ.get(name, "").strip()
    if not value:
        raise SystemExit(f"teelog node: {flag} {name}: environment variable is unset or empty")
    return value


def run_node(args: argparse.Namespace) -> int:
    """Handler of ``teelog node``: build keys, providers and journal, then serve."""
    import asyncio

    import uvicorn

    from .app import create_app
    from .dstack_agent import DstackAgent, DstackError
    from .gpu import GpuEvidenceError, choose_gpu_evidence
    from .journal import Journal
    from .keys import SigningKeys
    from .quote import choose_quote_provider
    from .settings import NodeSettings

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = NodeSettings(
            upstream=args.upstream,
            token=_secret_from_env(args.token_env, "--token-env"),
            upstream_token=_secret_from_env(args.upstream_token_env, "--upstream-token-env"),
            max_body_bytes=args.max_body_bytes,
            read_timeout=args.upstream_timeout,
        )
    except ValueError as exc:
        print(f"teelog node: {exc}", file=sys.stderr)
        return 2
    if args.model_broker is not None:
        code = _load_model_first(args)
        if code != 0:
            return code
    if settings.token is None:
        logging.getLogger("teelog.node").warning(
            "no --token-env: completions and signatures are open to anyone who can connect")

    if args.signing_key == "dstack":
        async def derive() -> SigningKeys:
            agent = DstackAgent(args.dstack_socket)
            try:
                return await SigningKeys.from_dstack(agent, args.key_path_prefix)
            finally:
                await agent.aclose()

        try:
            keys = asyncio.run(derive())
        except DstackError as exc:
            print(f"teelog node: --signing-key dstack: {exc}", file=sys.stderr)
            return 1
    else:
        keys = SigningKeys.random()

    try:
        quotes = choose_quote_provider(
            args.quote_provider, dstack_socket=args.dstack_socket, configfs_base=args.configfs_tsm
        )
        gpus = choose_gpu_evidence(args.gpu_evidence)
    except GpuEvidenceError as exc:
        print(f"teelog node: --gpu-evidence {args.gpu_evidence}: {exc}", file=sys.stderr)
        return 1
    journal = Journal(args.journal, retention_days=args.retention or None,
                      durable=args.journal_fsync)
    app = create_app(settings, keys=keys, journal=journal, quotes=quotes, gpus=gpus)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                    access_log=False)
    finally:
        journal.close()
    return 0


def register_model_fetch(model_commands: argparse._SubParsersAction) -> None:
    """Add ``fetch`` to the ``teelog model`` group (which ``teelog.models.cli`` owns; the models
    package imports nothing of ours, so the node's loader is added from here)."""
    p = model_commands.add_parser(
        "fetch",
        help="attest to a key broker, receive the model key, decrypt the model into OUT",
        description=(
            "Speak the Trustee KBS protocol 0.4.0 to --broker with an ephemeral P-256 key and "
            "evidence from --quote-provider, unwrap the released model key, decrypt --encrypted "
            "into --out (all files or none) and, on dstack, measure the manifest digest into "
            "RTMR3 as the runtime event teelog-model. Sample evidence (no TEE) is insecure and "
            "reported so. Exit 0 loaded, 1 refused or a check failed, 2 unusable input."
        ),
    )
    p.add_argument("--broker", required=True, metavar="URL", help="broker base URL")
    p.add_argument("--resource", required=True, metavar="REPO/TYPE/TAG",
                   help="the resource path of the model version's key")
    p.add_argument("--encrypted", required=True, type=Path, metavar="DIR",
                   help="the encrypted model (with manifest.json)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="new or empty directory for the plaintext (a tmpfs)")
    p.add_argument("--quote-provider", choices=("configfs", "dstack", "sample"),
                   help="evidence source (default: the dstack socket if present, else "
                   "configfs-tsm; sample, no TEE, only when named)")
    p.add_argument("--owner-vkey", type=Path, metavar="FILE",
                   help="check the manifest's signature with the owner's Ed25519 key (PEM)")
    p.add_argument("--dstack-socket", default="/var/run/dstack.sock",
                   help="dstack guest agent socket (or http:// URL of a simulator)")
    p.add_argument("--configfs-tsm", default="/sys/kernel/config/tsm/report",
                   help="configfs-tsm report directory")
    p.add_argument("--gpu-evidence", default="auto", choices=("auto", "nvml", "none"),
                   help="GPU evidence sent with the quote, over the KBS device nonce (auto: "
                   "NVML when it sees CC-mode GPUs, else none)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds per broker request (default 30)")
    p.set_defaults(func=cmd_model_fetch)


def cmd_model_fetch(args: argparse.Namespace) -> int:
    """Handler of ``teelog model fetch``."""
    import asyncio

    from teelog.models import ModelInputError, read_owner_verify_key

    from .dstack_agent import DstackAgent
    from .gpu import GpuEvidenceError, choose_gpu_evidence
    from .model_fetch import FetchError, SampleEvidence, TdxEvidence, fetch_model
    from .quote import ConfigfsTsmQuoteProvider, DstackQuoteProvider

    def fail(message: str, code: int) -> int:
        print(f"teelog model fetch: {message}", file=sys.stderr)
        return code

    kind = args.quote_provider
    if kind is None:
        if DstackQuoteProvider.available(args.dstack_socket):
            kind = "dstack"
        elif ConfigfsTsmQuoteProvider.available(args.configfs_tsm):
            kind = "configfs"
        else:
            return fail(f"no TEE found (no dstack socket at {args.dstack_socket}, no "
                        f"configfs-tsm at {args.configfs_tsm}); name --quote-provider "
                        f"(sample for development without a TEE)", 2)

    try:
        gpus = choose_gpu_evidence(args.gpu_evidence)
    except GpuEvidenceError as exc:
        return fail(f"--gpu-evidence {args.gpu_evidence}: {exc}", 2)

    async def run() -> int:
        agent = DstackAgent(args.dstack_socket) if kind == "dstack" else None
        if agent is not None:
            evidence = TdxEvidence(DstackQuoteProvider(agent))
        elif kind == "configfs":
            evidence = TdxEvidence(ConfigfsTsmQuoteProvider(args.configfs_tsm))
        else:
            evidence = SampleEvidence()
        try:
            vkey = read_owner_verify_key(args.owner_vkey) if args.owner_vkey else None
            result = await fetch_model(args.broker, args.resource, args.encrypted, args.out,
                                       evidence, owner_vkey=vkey, measure_with=agent,
                                       gpus=gpus, timeout=args.timeout)
        except ModelInputError as exc:
            return fail(str(exc), 2)
        except FetchError as exc:
            return fail(str(exc), 1)
        except OSError as exc:  # e.g. --out not writable: decrypt_model wrote nothing
            return fail(f"{exc.filename}: {exc.strerror}; nothing was written", 2)
        finally:
            await gpus.aclose()
            if agent is not None:
                await agent.aclose()
        m = result.manifest
        print(f"model           {m.model}")
        print(f"version         {m.version}")
        print(f"files           {len(m.files)} into {args.out}")
        print(f"manifest digest {result.digest}")
        print(f"signature       {result.signature}")
        print(f"release         log entry {result.entry_index} "
              f"(checkpoint size {result.checkpoint_size})")
        if result.insecure:
            print("evidence        INSECURE: sample evidence, no TEE; the broker released under "
                  "allow_insecure_sample and this release proves nothing about this machine")
        else:
            print(f"evidence        {result.tee} quote from {result.evidence_source}, accepted by "
                  f"the broker's policy")
        print(f"measurement     {result.measurement}")
        return 0

    return asyncio.run(run())
