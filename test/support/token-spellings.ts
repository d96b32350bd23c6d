/**
 * The other spellings of a compact JWS: a base64url segment whose length is 2 or 3 mod 4
 * ends in a character with unused low bits (4 or 2 of them), and decoders ignore those
 * bits, so 16 or 4 strings decode to the same bytes. A token's spelling set is the product
 * over its three segments (up to 16 x 16 x 16).
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Every spelling of one base64url segment that decodes to the same bytes, the canonical one first. */
export function segmentSpellings(segment: string): string[] {
  const unusedBits = [0, 0, 4, 2][segment.length % 4];
  if (unusedBits === 0 || segment.length === 0) return [segment];
  const last = ALPHABET.indexOf(segment[segment.length - 1]);
  const base = last & ~((1 << unusedBits) - 1);
  const spellings: string[] = [];
  for (let low = 0; low < 1 << unusedBits; low++) {
    spellings.push(segment.slice(0, -1) + ALPHABET[base | low]);
  }
  return [segment, ...spellings.filter((s) => s !== segment)];
}

/** Every spelling of a compact JWS (all combinations of its segments' spellings), the token itself first. */
export function tokenSpellings(token: string): string[] {
  const [header, payload, signature] = token.split('.').map(segmentSpellings);
  const all: string[] = [];
  for (const h of header) for (const p of payload) for (const s of signature) all.push(`${h}.${p}.${s}`);
  return all;
}
