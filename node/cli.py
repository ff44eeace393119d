"""``teelog node``: run the signing proxy in front of an OpenAI-compatible upstream."""

from __future__ import annotations

import argparse
import logging
import os
import sys


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
    p.set_defaults(func=run_node)


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
