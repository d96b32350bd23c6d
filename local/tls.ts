/**
 * Development TLS: one self-signed certificate for `localhost` (and 127.0.0.1) that every
 * local HTTPS server shares, generated in memory (or kept under .local-data by the local
 * stack, never committed). Clients trust it by passing `ca` (see shared/cache/http.ts).
 */
import { generate } from 'selfsigned';

export interface DevCertificate {
  /** PEM certificate; also the CA to trust (it is self-signed). */
  readonly cert: string;
  /** PEM private key. */
  readonly key: string;
}

/**
 * Generates a fresh RSA 2048 certificate for localhost, valid for 30 days. Give a second CA
 * trusted beside the shared one its own `commonName`: OpenSSL finds a CA by subject.
 */
export async function createDevCertificate(commonName = 'localhost'): Promise<DevCertificate> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(Date.now() + 30 * 24 * 3600_000);
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
