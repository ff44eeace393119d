// In-browser verification of a teelog entry: inclusion in a signed checkpoint, and for
// receipts the node's signature. Contract and trust model: docs/explorer-browser.md.
//
// The page supplies a JSON island <script type="application/json" id="verify-data"> and an
// element #browser-verify; this module sets data-browser-verify="ok" | "fail" on it. It uses
// only the entry bytes, the proof, the checkpoint note and the (pinned) verifier key: nothing
// the server says about the outcome is trusted. SHA-256 and Ed25519 come from WebCrypto;
// secp256k1 and Keccak-256 from the bundled @noble libraries (../vendor/README.md).

import { keccak_256, secp256k1 } from '../vendor/noble.js';

const utf8 = new TextEncoder();
const ED25519_TYPE = 0x01; // C2SP signed-note signature type for Ed25519
const PIN_PREFIX = 'teelog.pinned-vkey:';

/** A failed check: the message says what was wrong, for the page. */
export class VerifyError extends Error {}

function fail(message) {
  throw new VerifyError(message);
}

/** Decode standard base64 (with padding); reject anything else. */
export function b64decode(text, what) {
  if (typeof text !== 'string' || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    fail(`${what} is not standard base64`);
  }
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Decode lowercase or uppercase hex, with an optional 0x prefix. */
export function hexdecode(text, what) {
  const h = typeof text === 'string' && text.startsWith('0x') ? text.slice(2) : text;
  if (typeof h !== 'string' || h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) {
    fail(`${what} is not hex`);
  }
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

/**
 * Parse a C2SP signed-note verifier key `<name>+<hex keyid>+<base64(type ‖ pubkey)>` and check
 * that its key id is SHA-256(name ‖ 0x0A ‖ type ‖ pubkey)[:4] (C2SP signed-note, "Keys").
 */
export async function parseVkey(vkey) {
  if (typeof vkey !== 'string') fail('the verifier key is missing');
  // The base64 key may itself contain '+': split at the first two only.
  const m = /^([^+]*)\+([^+]*)\+(.*)$/s.exec(vkey.trim());
  if (!m) fail('the verifier key is not name+keyid+key');
  const [, name, idHex, keyB64] = m;
  if (!name || /[\s+]/.test(name)) fail('the verifier key name is empty or has spaces');
  if (!/^[0-9a-f]{8}$/.test(idHex)) fail('the verifier key id is not 8 lowercase hex digits');
  const key = b64decode(keyB64, 'the verifier key');
  if (key.length !== 33 || key[0] !== ED25519_TYPE) fail('the verifier key is not an Ed25519 (type 0x01) key');
  const keyId = hexdecode(idHex, 'key id');
  const expected = (await sha256(concat(utf8.encode(name), Uint8Array.of(0x0a), key))).slice(0, 4);
  if (!equalBytes(expected, keyId)) fail('the verifier key id does not match its key');
  return { name, keyId, publicKey: key.slice(1), text: vkey.trim() };
}

/**
 * Split a C2SP signed note into the signed message (the text up to and including the newline
 * that ends its last line, before the blank line) and its signature lines
 * `— <name> <base64(keyid[4] ‖ signature)>`.
 */
export function parseNote(note) {
  if (typeof note !== 'string' || !note.endsWith('\n')) fail('the checkpoint note does not end with a newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) fail('the checkpoint note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  const signatures = lines.map((line) => {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) fail('the checkpoint note has a malformed signature line');
    const blob = b64decode(m[2], 'a note signature');
    if (blob.length < 5) fail('a note signature is too short');
    return { name: m[1], keyId: blob.slice(0, 4), signature: blob.slice(4) };
  });
  return { text, message: utf8.encode(text), signatures };
}

/** Parse a C2SP tlog-checkpoint body: origin, decimal size, base64 32-byte root, extensions. */
export function parseCheckpoint(text) {
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) fail('the checkpoint body has fewer than three lines');
  const [origin, sizeText, rootB64] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) fail('the checkpoint size is not a decimal number');
  const root = b64decode(rootB64, 'the checkpoint root');
  if (root.length !== 32) fail('the checkpoint root is not 32 bytes');
  return { origin, size: BigInt(sizeText), root };
}

/** Verify the note's Ed25519 signature by the vkey's name and key id; others are ignored. */
export async function verifyNoteSignature(note, key) {
  const mine = note.signatures.filter((s) => s.name === key.name && equalBytes(s.keyId, key.keyId));
  if (mine.length === 0) fail(`the checkpoint has no signature by ${key.name} (key id ${hex(key.keyId)})`);
  let publicKey;
  try {
    publicKey = await crypto.subtle.importKey('raw', key.publicKey, { name: 'Ed25519' }, false, ['verify']);
  } catch (err) {
    fail(`this browser cannot verify Ed25519 signatures (WebCrypto: ${err.message})`);
  }
  for (const s of mine) {
    if (s.signature.length === 64 && (await crypto.subtle.verify({ name: 'Ed25519' }, publicKey, s.signature, note.message))) {
      return;
    }
  }
  fail('the checkpoint signature does not verify with the log key');
}

export async function leafHash(entry) {
  return sha256(concat(Uint8Array.of(0x00), entry));
}

async function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(0x01), left, right));
}

/**
 * RFC 9162 §2.1.3.2: the root implied by an inclusion proof of `leaf` at `index` in a tree of
 * `size` entries. Fails if the index is out of range or the proof has the wrong length.
 */
export async function rootFromInclusionProof(index, size, leaf, proof) {
  if (index >= size) fail(`the leaf index ${index} is not below the tree size ${size}`);
  if (leaf.length !== 32) fail('the leaf hash is not 32 bytes');
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== 32) fail('an inclusion proof hash is not 32 bytes');
    if (sn === 0n) fail('the inclusion proof is too long');
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail('the inclusion proof is too short');
  return r;
}

/** Keccak-256 of the EIP-191 version 0x45 ("personal_sign") message for `text`. */
export function eip191Hash(text) {
  const body = utf8.encode(text);
  return keccak_256(concat(utf8.encode(`\x19Ethereum Signed Message:\n${body.length}`), body));
}

/** Recover the Ethereum address that made a 65-byte r ‖ s ‖ v EIP-191 signature over `text`. */
export function recoverEip191Address(text, signatureHex) {
  const sig = hexdecode(signatureHex, 'the receipt signature');
  if (sig.length !== 65) fail('the receipt signature is not 65 bytes');
  let v = sig[64];
  if (v === 27 || v === 28) v -= 27;
  if (v !== 0 && v !== 1) fail('the receipt signature has an invalid recovery id');
  let point;
  try {
    const recovered = concat(Uint8Array.of(v), sig.slice(0, 64));
    const pub = secp256k1.recoverPublicKey(recovered, eip191Hash(text), { prehash: false });
    point = secp256k1.Point.fromBytes(pub).toBytes(false);
  } catch (err) {
    fail(`the receipt signature does not recover to a key (${err.message})`);
  }
  return `0x${hex(keccak_256(point.slice(1)).slice(12))}`;
}

async function verifyEd25519Receipt(text, publicKeyHex, signatureHex) {
  const pub = hexdecode(publicKeyHex, 'the Ed25519 signing key');
  const sig = hexdecode(signatureHex, 'the Ed25519 receipt signature');
  if (pub.length !== 32 || sig.length !== 64) fail('the Ed25519 receipt key or signature has the wrong length');
  let key;
  try {
    key = await crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
  } catch (err) {
    fail(`this browser cannot verify Ed25519 signatures (WebCrypto: ${err.message})`);
  }
  if (!(await crypto.subtle.verify({ name: 'Ed25519' }, key, sig, utf8.encode(text)))) {
    fail('the Ed25519 receipt signature does not verify');
  }
}

/** The signatures of a receipt entry, checked; `claimed` (from the page) must agree with it. */
async function verifyReceipt(entry, claimed) {
  if (typeof entry.text !== 'string') fail('the receipt entry has no signed text');
  const sigs = entry.signatures || {};
  const results = [];
  if (sigs.ecdsa) {
    const address = recoverEip191Address(entry.text, sigs.ecdsa.signature);
    if (typeof sigs.ecdsa.signing_address !== 'string' || address !== sigs.ecdsa.signing_address.toLowerCase()) {
      fail(`the receipt signature recovers to ${address}, not to the signing address ${sigs.ecdsa.signing_address}`);
    }
    results.push(['Receipt signature (secp256k1, EIP-191)', `signed by ${address}`]);
  }
  if (sigs.ed25519) {
    await verifyEd25519Receipt(entry.text, sigs.ed25519.signing_address, sigs.ed25519.signature);
    results.push(['Receipt signature (Ed25519)', `signed by key ${sigs.ed25519.signing_address}`]);
  }
  if (results.length === 0) fail('the receipt entry carries no signature');
  if (claimed) {
    const same = (a, b) => typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
    if (!sigs.ecdsa || claimed.text !== entry.text || !same(claimed.signature, sigs.ecdsa.signature)
        || !same(claimed.signing_address, sigs.ecdsa.signing_address)) {
      fail('the receipt shown on the page differs from the receipt in the logged entry');
    }
  }
  return results;
}

/** The key to check against: the one pinned in this browser for the log name, else the page's. */
export function pinnedVkey(name) {
  try {
    return window.localStorage.getItem(PIN_PREFIX + name);
  } catch {
    return null; // storage disabled: nothing pinned
  }
}

/**
 * Verify everything the page supplies. Returns {checks: [[title, detail]], key, checkpoint,
 * pinned}; throws VerifyError (with the checks passed so far in `.checks`) on the first failure.
 */
export async function verifyData(data) {
  const checks = [];
  const step = async (title, fn) => {
    try {
      const detail = await fn();
      checks.push([title, detail]);
    } catch (err) {
      const e = err instanceof VerifyError ? err : new VerifyError(`${title}: ${err.message}`);
      e.checks = checks;
      e.failedCheck = title;
      throw e;
    }
  };
  let key;
  let note;
  let checkpoint;
  let entryBytes;
  let pinned = false;
  if (!data || typeof data !== 'object') fail('the page has no verification data');
  await step('Log key', async () => {
    key = await parseVkey(data.vkey);
    const pin = pinnedVkey(key.name);
    if (pin !== null) {
      if (pin !== key.text) fail(`the page's key for ${key.name} differs from the key you pinned in this browser`);
      pinned = true;
    }
    return `${key.name}, key id ${hex(key.keyId)}${pinned ? ' (pinned in this browser)' : ' (from the page: not pinned; compare it with the key you trust)'}`;
  });
  await step('Checkpoint signature (Ed25519)', async () => {
    note = parseNote(data.checkpoint);
    await verifyNoteSignature(note, key);
    return `signed by ${key.name}`;
  });
  await step('Checkpoint', async () => {
    checkpoint = parseCheckpoint(note.text);
    if (checkpoint.origin !== key.name) fail(`the checkpoint origin ${checkpoint.origin} is not the key's log ${key.name}`);
    return `tree size ${checkpoint.size}, root ${hex(checkpoint.root)}`;
  });
  await step('Inclusion proof (RFC 9162)', async () => {
    if (!Number.isSafeInteger(data.index) || data.index < 0) fail('the entry index is not a non-negative integer');
    if (!Array.isArray(data.inclusion_proof)) fail('the inclusion proof is not a list');
    entryBytes = b64decode(data.entry_b64, 'the entry');
    const proof = data.inclusion_proof.map((p) => b64decode(p, 'an inclusion proof hash'));
    const leaf = await leafHash(entryBytes);
    const root = await rootFromInclusionProof(BigInt(data.index), checkpoint.size, leaf, proof);
    if (!equalBytes(root, checkpoint.root)) fail('the inclusion proof leads to a root that is not the checkpoint root');
    return `entry ${data.index} (leaf ${hex(leaf).slice(0, 16)}…) is in the tree of size ${checkpoint.size}`;
  });
  let entry = null;
  try {
    entry = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(entryBytes));
  } catch {
    entry = null; // not JSON: inclusion still holds; a receipt claim below then fails
  }
  if ((entry && entry.type === 'receipt') || data.receipt) {
    let receiptChecks;
    await step('Receipt signature', async () => {
      if (!entry || entry.type !== 'receipt') fail('the page claims a receipt but the logged entry is not one');
      receiptChecks = await verifyReceipt(entry, data.receipt);
      return receiptChecks.map(([, d]) => d).join('; ');
    });
    checks.pop();
    checks.push(...receiptChecks);
  }
  return { checks, key, checkpoint, pinned };
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function checkList(checks, failed) {
  const list = el('ul', 'bv-checks');
  for (const [title, detail] of checks) {
    const item = el('li', 'bv-check bv-pass');
    item.append(el('span', 'bv-mark', '\u2713 '), el('strong', '', title), document.createTextNode(`: ${detail}`));
    list.append(item);
  }
  if (failed) {
    const item = el('li', 'bv-check bv-fail');
    item.append(el('span', 'bv-mark', '\u2717 '), el('strong', '', failed.title), document.createTextNode(`: ${failed.message}`));
    list.append(item);
  }
  return list;
}

function pinButtons(target, keyText, name) {
  const bar = el('p', 'bv-pin');
  const pinned = pinnedVkey(name);
  const button = el('button', 'bv-pin-button', pinned === null ? 'Pin this log key' : 'Forget pinned key');
  button.type = 'button';
  button.addEventListener('click', () => {
    try {
      if (pinned === null) window.localStorage.setItem(PIN_PREFIX + name, keyText);
      else window.localStorage.removeItem(PIN_PREFIX + name);
    } catch {
      button.textContent = 'This browser does not allow storing a key';
      return;
    }
    run(target); // verify again against the new trust anchor
  });
  bar.append(button);
  return bar;
}

/** Verify the page's #verify-data and show the outcome in `target` (#browser-verify). */
export async function run(target) {
  target.dataset.browserVerify = 'pending';
  let data = null;
  let result;
  try {
    const island = document.getElementById('verify-data');
    if (!island) fail('the page has no verification data');
    try {
      data = JSON.parse(island.textContent);
    } catch {
      fail('the verification data is not JSON');
    }
    result = await verifyData(data);
  } catch (err) {
    const message = err instanceof VerifyError ? err.message : `unexpected error: ${err.message}`;
    target.replaceChildren(
      el('p', 'bv-summary bv-fail', '\u2717 Not verified in your browser'),
      checkList(err.checks || [], { title: err.failedCheck || 'Verification', message }),
    );
    if (data && typeof data.vkey === 'string') {
      const name = data.vkey.trim().split('+')[0];
      if (pinnedVkey(name) !== null) target.append(pinButtons(target, data.vkey.trim(), name));
    }
    target.dataset.browserVerify = 'fail';
    return;
  }
  target.replaceChildren(
    el('p', 'bv-summary bv-ok', `\u2713 Verified in your browser against ${result.key.name} (key id ${hex(result.key.keyId)})`),
    checkList(result.checks, null),
    pinButtons(target, result.key.text, result.key.name),
  );
  target.dataset.browserVerify = 'ok';
}

const target = typeof document !== 'undefined' ? document.getElementById('browser-verify') : null;
if (target) run(target);
