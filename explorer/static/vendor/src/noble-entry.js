// Build entry for explorer/static/vendor/noble.js (see ../README.md). Not loaded by pages.
export { secp256k1 } from '@noble/curves/secp256k1.js';
export { keccak_256 } from '@noble/hashes/sha3.js';
