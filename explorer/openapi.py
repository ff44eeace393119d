"""The OpenAPI 3.1 description of ``/api/v1/``, written by hand beside the routes
(``explorer.api``) so that it says what the code does; tests validate it with
openapi-spec-validator and check every route is described."""

from __future__ import annotations

from typing import Any

_STATUS = {
    "type": ["string", "null"],
    "enum": ["verified", "warning", "failed", "unverifiable", None],
}
_CURSOR = {
    "name": "cursor",
    "in": "query",
    "description": "The `next` value of the previous page.",
    "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "description": "Page size.",
    "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _page_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "next": {"type": ["string", "null"], "description": "Cursor of the next page."},
        },
    }


_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "404": {"$ref": "#/components/responses/NotFound"},
}


def _get(
    summary: str,
    ok: dict[str, Any],
    params: list[dict[str, Any]] | None = None,
    errors: tuple[str, ...] = ("400",),
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": ok}}
    for code in errors:
        op["responses"][code] = _ERRORS[code]
    if params:
        op["parameters"] = params
    return {"get": op}


def _path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


_INDEX = _path_param("index", {"type": "integer", "minimum": 0}, "Leaf index in the log.")
_NAME = _path_param("name", {"type": "string"}, "Node name.")

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
            }
        },
    },
    "Check": {
        "type": "object",
        "required": ["name", "status", "detail"],
        "properties": {
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["pass", "fail", "warn", "skip"]},
            "detail": {"type": "string"},
        },
    },
    "Attestation": {
        "type": "object",
        "description": "One verdict, as in `teelog verify --json`.",
        "properties": {
            "role": {"type": ["string", "null"]},
            "model": {"type": ["string", "null"]},
            "signing_address": {"type": ["string", "null"]},
            "signing_algo": {"type": ["string", "null"]},
            "status": _STATUS,
            "checks": {"type": "array", "items": _ref("Check")},
            "measurements": {"type": ["object", "null"]},
        },
    },
    "Verdict": {
        "type": "object",
        "description": "Exactly what `teelog verify --json` prints.",
        "required": ["status", "attestations"],
        "properties": {
            "status": _STATUS,
            "attestations": {"type": "array", "items": _ref("Attestation")},
        },
    },
    "RoleStatus": {
        "type": "object",
        "description": "The status of one part of an entry: one per attestation of an "
        "attestation entry (role gateway, model, node…), one `receipt` for a receipt. `reason` "
        "is the one line saying why it is not verified (`check: detail` of the first check "
        "that explains it), null when it is verified.",
        "required": ["role", "model", "status", "reason"],
        "properties": {
            "role": {"type": "string"},
            "model": {"type": ["string", "null"]},
            "status": _STATUS,
            "reason": {"type": ["string", "null"]},
        },
    },
    "Vouching": {
        "type": "object",
        "description": "An attestation entry of the receipt's node, as the log holds it, in "
        "which an attestation names the receipt's signer.",
        "required": ["index", "status", "vouches", "role", "model", "signing_address"],
        "properties": {
            "index": {"type": "integer"},
            "status": _STATUS,
            "vouches": {
                "type": "boolean",
                "description": "Whether that attestation's status (verified or warning) "
                "vouches for the key.",
            },
            "role": {"type": ["string", "null"]},
            "model": {"type": ["string", "null"]},
            "signing_address": {"type": "string"},
            "time": {"type": ["string", "null"]},
        },
    },
    "EntrySummary": {
        "type": "object",
        "required": ["index", "type", "node", "time", "status", "summary", "problems"],
        "properties": {
            "index": {"type": "integer"},
            "type": {
                "type": "string",
                "enum": ["attestation", "receipt", "key_release", "key_policy", "unknown",
                         "malformed"],
            },
            "insecure": {
                "type": "boolean",
                "description": "key_release entries only: released or asked for with sample "
                "evidence (no TEE); never verified.",
            },
            "node": {"type": ["string", "null"]},
            "time": {"type": ["string", "null"], "description": "RFC 3339 UTC."},
            "status": _STATUS,
            "roles": {
                "type": "array",
                "items": _ref("RoleStatus"),
                "description": "The status of each part (empty for unknown or malformed "
                "entries).",
            },
            "summary": {"type": "string"},
            "problems": {"type": "array", "items": {"type": "string"}},
            "matched": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Search results only: the kinds of value that matched.",
            },
        },
    },
    "Change": {
        "type": "object",
        "required": ["id", "node", "index", "previous_index", "field", "old", "new"],
        "properties": {
            "id": {"type": "integer"},
            "node": {"type": "string"},
            "index": {"type": "integer", "description": "The attestation that changed."},
            "previous_index": {"type": "integer", "description": "The one it is compared with."},
            "time": {"type": ["string", "null"]},
            "field": {"type": "string", "description": "e.g. model[openai/gpt-oss-120b].rtmr3"},
            "old": {"type": ["string", "null"]},
            "new": {"type": ["string", "null"]},
        },
    },
    "Node": {
        "type": "object",
        "required": ["name", "status", "last_seen", "last_index"],
        "properties": {
            "name": {"type": "string"},
            "status": _STATUS,
            "roles": {
                "type": "array",
                "items": _ref("RoleStatus"),
                "description": "The status of each attestation of the node's latest entry.",
            },
            "tcb_status": {"type": ["string", "null"]},
            "last_seen": {"type": ["string", "null"]},
            "last_index": {"type": ["integer", "null"]},
            "first_index": {"type": "integer"},
            "attestations": {"type": "integer"},
            "receipts": {"type": "integer"},
            "changes": {"type": "integer"},
            "verdict": {"oneOf": [_ref("Verdict"), {"type": "null"}]},
        },
    },
    "NodeHistoryItem": {
        "allOf": [
            _ref("EntrySummary"),
            {
                "type": "object",
                "properties": {"changes": {"type": "array", "items": _ref("Change")}},
            },
        ]
    },
    "Entry": {
        "type": "object",
        "required": ["index", "type", "entry", "entry_b64", "links"],
        "properties": {
            "index": {"type": "integer"},
            "type": {"type": "string"},
            "node": {"type": ["string", "null"]},
            "time": {"type": ["string", "null"]},
            "status": _STATUS,
            "roles": {"type": "array", "items": _ref("RoleStatus")},
            "summary": {"type": "string"},
            "problems": {"type": "array", "items": {"type": "string"}},
            "entry": {
                "type": ["object", "null"],
                "description": "The parsed entry (docs/entries.md).",
            },
            "entry_b64": {"type": "string", "description": "The exact entry bytes, base64."},
            "entry_sha256": {
                "type": "string",
                "description": "SHA-256 (hex) of the entry bytes; names a malformed entry.",
            },
            "verdict": _ref("Verdict"),
            "attestation_index": {
                "type": ["integer", "null"],
                "description": "Receipts: the entry's own attestation_index (docs/entries.md).",
            },
            "vouched_by": {
                "oneOf": [_ref("Vouching"), {"type": "null"}],
                "description": "Receipts: the attestation at attestation_index, only when the "
                "log shows it vouches for the signer (same node, status verified or warning).",
            },
            "named_by": {
                "oneOf": [_ref("Vouching"), {"type": "null"}],
                "description": "Receipts with no vouched_by: the latest attestation that named "
                "the signer, with its status; null when none did.",
            },
            "changes": {"type": "array", "items": _ref("Change")},
            "links": {"type": "object"},
        },
    },
    "Proof": {
        "type": "object",
        "required": ["index", "tree_size", "inclusion_proof", "checkpoint", "tlog_proof"],
        "properties": {
            "index": {"type": "integer"},
            "tree_size": {"type": "integer"},
            "inclusion_proof": {
                "type": "array",
                "items": {"type": "string", "contentEncoding": "base64"},
                "description": "RFC 9162 §2.1.3 inclusion proof, leaf side first.",
            },
            "checkpoint": {"type": "string", "description": "C2SP signed note of the checkpoint."},
            "tlog_proof": {"type": "string", "description": "c2sp.org/tlog-proof@v1 text."},
        },
    },
    "Receipt": {
        "type": "object",
        "required": ["index", "entry_b64", "tlog_proof"],
        "properties": {
            "index": {"type": "integer"},
            "entry_b64": {"type": "string"},
            "tlog_proof": {"type": "string", "description": "c2sp.org/tlog-proof@v1 text."},
            "checkpoint": {"type": "string"},
            "inclusion_proof": {"type": "array", "items": {"type": "string"}},
            "tree_size": {"type": "integer"},
            "entry": {"type": ["object", "null"]},
            "vouched_by": {
                "oneOf": [_ref("Vouching"), {"type": "null"}],
                "description": "As for an entry: the attestation that vouches for the signer, "
                "when the log shows it does.",
            },
            "named_by": {
                "oneOf": [_ref("Vouching"), {"type": "null"}],
                "description": "Otherwise the latest attestation that named the signer.",
            },
        },
    },
    "Model": {
        "type": "object",
        "required": ["name", "versions", "released", "insecure_released", "denied"],
        "properties": {
            "name": {"type": ["string", "null"]},
            "versions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["version", "manifest_sha256", "policy_sha256", "released",
                                 "insecure_released", "denied"],
                    "properties": {
                        "version": {"type": ["string", "null"]},
                        "manifest_sha256": {"type": "array", "items": {"type": "string"}},
                        "policy_sha256": {"type": "array", "items": {"type": "string"}},
                        "released": {"type": "integer"},
                        "insecure_released": {
                            "type": "integer",
                            "description": "Releases to sample evidence (no TEE): INSECURE.",
                        },
                        "denied": {"type": "integer"},
                    },
                },
            },
            "released": {"type": "integer"},
            "insecure_released": {"type": "integer"},
            "denied": {"type": "integer"},
            "last_index": {"type": "integer"},
        },
    },
    "Release": {
        "type": "object",
        "required": ["index", "kind", "model", "insecure", "evidence_status"],
        "properties": {
            "index": {"type": "integer"},
            "kind": {"type": "string", "enum": ["released", "denied"]},
            "model": {"type": ["string", "null"]},
            "version": {"type": ["string", "null"]},
            "manifest_sha256": {"type": ["string", "null"]},
            "key_id": {"type": ["string", "null"]},
            "policy_sha256": {"type": ["string", "null"]},
            "resource": {"type": ["string", "null"]},
            "time": {"type": ["string", "null"]},
            "insecure": {
                "type": "boolean",
                "description": "True for sample evidence (no TEE) or an entry not saying "
                "false: never verified.",
            },
            "tee": {"type": ["string", "null"]},
            "tee_pubkey_thumbprint": {"type": ["string", "null"]},
            "quote_sha256": {"type": ["string", "null"]},
            "evidence_status": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"]},
            "measurements": {"type": ["object", "null"]},
        },
    },
    "Checkpoint": {
        "type": "object",
        "required": ["origin", "size", "root", "note", "vkey"],
        "properties": {
            "origin": {"type": "string"},
            "size": {"type": "integer"},
            "root": {"type": "string", "contentEncoding": "base64"},
            "note": {"type": "string"},
            "age_seconds": {"type": ["number", "null"]},
            "vkey": {"type": "string"},
            "witnessed": {
                "type": ["object", "null"],
                "description": "The published checkpoint against the log's witness policy "
                "(null: no policy). quorum_met false means not fully verified.",
                "properties": {
                    "quorum_met": {"type": "boolean"},
                    "cosigned": {"type": "array", "items": {"type": "string"}},
                    "witnesses": {"type": "array", "items": {"type": "object"}},
                    "note": {"type": "string"},
                    "error": {"type": "string"},
                },
            },
        },
    },
    "Consistency": {
        "type": "object",
        "required": ["from", "to", "proof"],
        "properties": {
            "from": {"type": "integer"},
            "to": {"type": "integer"},
            "proof": {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}},
            "root_from": {"type": ["string", "null"], "contentEncoding": "base64"},
            "root_to": {"type": ["string", "null"], "contentEncoding": "base64"},
            "checkpoint_from": {
                "type": ["string", "null"],
                "description": "The note the log signed at `from`, if it signed one there.",
            },
            "checkpoint": {"type": ["string", "null"]},
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API (a fresh dict each call)."""
    q_param = {
        "name": "q",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "maxLength": 300},
        "description": "A signature, chat id, signing address, "
        "request/response/quote hash, measurement value, node name or entry index.",
    }
    receipt_params = [
        {"name": n, "in": "query", "schema": {"type": "string"}, "description": d}
        for n, d in (
            ("signature", "ECDSA (0x…) or Ed25519 signature of the receipt."),
            ("chat_id", "The chat completion id."),
            ("address", "Signing address (0x…) or Ed25519 public key."),
            ("response_hash", "SHA-256 hex of the response body."),
        )
    ]
    type_param = {
        "name": "type",
        "in": "query",
        "schema": {
            "type": "string",
            "enum": ["attestation", "receipt", "key_release", "key_policy", "unknown",
                     "malformed"],
        },
    }
    node_param = {"name": "node", "in": "query", "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "teelog explorer API",
            "version": "1",
            "description": "Read-only JSON over a transparency log of confidential-inference "
            "attestations and signed receipts. Lists are newest first with cursor pagination. "
            "The static C2SP log (checkpoint, tiles, blobs) is served under /log/.",
        },
        "paths": {
            "/api/v1/": _get("Links to every resource", _json({"type": "object"}), errors=()),
            "/api/v1/openapi.json": _get("This document", _json({"type": "object"}), errors=()),
            "/api/v1/status": _get(
                "Log size, checkpoint and counters", _json({"type": "object"}), errors=()
            ),
            "/api/v1/nodes": _get(
                "Every node with its latest status", _json(_page_of("Node")), errors=()
            ),
            "/api/v1/nodes/{name}": _get(
                "One node and its current verdict", _json(_ref("Node")), [_NAME], ("404",)
            ),
            "/api/v1/nodes/{name}/history": _get(
                "A node's attestations, newest first, with what changed",
                _json(_page_of("NodeHistoryItem")),
                [_NAME, _CURSOR, _LIMIT],
                ("400", "404"),
            ),
            "/api/v1/entries": _get(
                "Entries, newest first",
                _json(_page_of("EntrySummary")),
                [type_param, node_param, _CURSOR, _LIMIT],
            ),
            "/api/v1/entries/{index}": _get(
                "One entry, parsed, with its verdict", _json(_ref("Entry")), [_INDEX], ("404",)
            ),
            "/api/v1/entries/{index}/proof": _get(
                "Inclusion proof of an entry to the latest checkpoint",
                _json(_ref("Proof")),
                [_INDEX],
                ("404",),
            ),
            "/api/v1/search": _get(
                "Entries matching a value exactly",
                _json(
                    {
                        "allOf": [
                            _page_of("EntrySummary"),
                            {
                                "type": "object",
                                "properties": {
                                    "nodes": {"type": "array", "items": {"type": "string"}}
                                },
                            },
                        ]
                    }
                ),
                [q_param, _CURSOR, _LIMIT],
            ),
            "/api/v1/receipts": _get(
                "The newest receipt with this key, its bytes and a tlog-proof (give exactly one)",
                _json(_ref("Receipt")),
                receipt_params,
                ("400", "404"),
            ),
            "/api/v1/changes": _get(
                "Measurement changes, newest first",
                _json(_page_of("Change")),
                [node_param, _CURSOR, _LIMIT],
            ),
            "/api/v1/models": _get(
                "Every model of a key release or policy, with versions and counts",
                _json(_page_of("Model")),
                errors=(),
            ),
            "/api/v1/releases": _get(
                "Key releases and denials, newest first",
                _json(_page_of("Release")),
                [
                    {"name": "model", "in": "query", "schema": {"type": "string"},
                     "description": "Only this model's decisions."},
                    _CURSOR,
                    _LIMIT,
                ],
            ),
            "/api/v1/checkpoint": _get(
                "The latest signed checkpoint and the verifier key",
                _json(_ref("Checkpoint")),
                errors=(),
            ),
            "/api/v1/checkpoints/{size}": _get(
                "The checkpoint the log signed at this tree size (one per batch)",
                _json(
                    {
                        "type": "object",
                        "required": ["size", "note"],
                        "properties": {"size": {"type": "integer"}, "note": {"type": "string"}},
                    }
                ),
                [_path_param("size", {"type": "integer", "minimum": 0}, "Tree size.")],
                ("404",),
            ),
            "/api/v1/consistency": _get(
                "RFC 9162 consistency proof between two tree sizes",
                _json(_ref("Consistency")),
                [
                    {
                        "name": "from",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0},
                    },
                    {
                        "name": "to",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0},
                        "description": "Default: the latest checkpoint's size.",
                    },
                ],
            ),
        },
        "components": {
            "schemas": _SCHEMAS,
            "responses": {
                "BadRequest": _json(_ref("Error"), "The request is unusable (message says why)."),
                "NotFound": _json(_ref("Error"), "No such thing in this log."),
            },
        },
    }
