/**
 * Item 6: stored bytes per partition against the plain MSAL JSON. (a) stores an envelope
 * (header with the wrapped data key, deflate-raw above 1 KiB, AES-GCM); the peer stores
 * the plain JSON.
 */
import type { BlobSizeRow } from '../model';
import { peerItemBytes, type Population } from '../population';
import { NAIVE_KEY, PEER_APP_KEY, peerKey } from '../variants';

export function blobSizes(population: Population): BlobSizeRow[] {
  const user = population.users[0];
  const naiveBytes = Buffer.byteLength(population.naiveJson, 'utf8');
  return [
    {
      partition: 'OBO, one user, one downstream token',
      plainJsonBytes: Buffer.byteLength(user.json, 'utf8'),
      envelopeBytes: user.envelopeBytes,
      itemBytes: user.itemBytes,
      peerItemBytes: peerItemBytes(peerKey(user.assertion), user.json),
    },
    {
      partition: 'App (client credentials), one token',
      plainJsonBytes: Buffer.byteLength(population.app.json, 'utf8'),
      envelopeBytes: population.app.envelopeBytes,
      itemBytes: population.app.itemBytes,
      peerItemBytes: peerItemBytes(PEER_APP_KEY, population.app.json),
    },
    {
      partition: `(d) naive shared blob, ${population.users.length} users + app (plain only)`,
      plainJsonBytes: naiveBytes,
      envelopeBytes: naiveBytes,
      itemBytes: peerItemBytes(NAIVE_KEY, population.naiveJson),
      peerItemBytes: peerItemBytes(NAIVE_KEY, population.naiveJson),
    },
  ];
}
