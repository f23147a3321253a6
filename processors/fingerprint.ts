/**
 * A fast 64-bit non-cryptographic string hash, as 16 hex digits, for usage fingerprints.
 *
 * Two independent 32-bit multiply-xorshift lanes over the UTF-16 code units (the construction
 * of the public-domain "cyrb53" hash, widened to two full 32-bit lanes). It only has to tell
 * two events with the same (tenant, event_id) apart, so a collision (about 2^-64 per pair)
 * would merely let a conflicting duplicate pass as an exact one; never a double count.
 * About 10x cheaper than node:crypto sha1 on short strings, and it runs once per event.
 */
export function hash64Hex(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}
