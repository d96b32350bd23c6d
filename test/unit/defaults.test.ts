import { TokenCacheDefaults, createTokenCache } from '../../shared/cache/token-cache';
import { DataKeyCache } from '../../shared/crypto/data-key-cache';
import { Envelope } from '../../shared/crypto/envelope';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import {
  COALESCING_DEFAULTS,
  CONFLICT_RETRY_DEFAULTS,
  DATA_KEY_BYTES,
  ENVELOPE_DEFAULTS,
  L1_DEFAULTS,
  TOKEN_CACHE_DEFAULTS,
} from '../../shared/defaults';
import { ConfigurationError } from '../../shared/errors';
import { MemoryStore } from '../../shared/store/memory';
import { thrownBy } from './thrown';

const masterKey = Buffer.alloc(DATA_KEY_BYTES, 3);

function cacheWith(compressAboveBytes: unknown) {
  return createTokenCache({
    msal: {
      clientId: 'client',
      authority: 'https://login.example.test/tenant',
      clientSecret: 'not-a-real-secret',
    },
    store: new MemoryStore(),
    keyRing: new LocalKeyRing({ masterKey }),
    compressAboveBytes: compressAboveBytes as number,
  });
}

describe('shared/defaults', () => {
  describe('TokenCacheDefaults (deprecated)', () => {
    it('is the constants, flattened', () => {
      expect(TokenCacheDefaults).toMatchObject({
        l1MaxBytes: L1_DEFAULTS.maxBytes,
        l1TtlMs: L1_DEFAULTS.ttlMs,
        l1Jitter: L1_DEFAULTS.jitter,
        userSlidingWindowSeconds: TOKEN_CACHE_DEFAULTS.userSlidingWindowSeconds,
        compressAboveBytes: ENVELOPE_DEFAULTS.compressAboveBytes,
        conflictMaxAttempts: CONFLICT_RETRY_DEFAULTS.maxAttempts,
        coalescingLease: COALESCING_DEFAULTS.lease,
        leaseTtlMs: COALESCING_DEFAULTS.leaseTtlMs,
        leaseMaxWaitMs: COALESCING_DEFAULTS.maxWaitMs,
        maxInFlight: COALESCING_DEFAULTS.maxInFlight,
      });
    });
  });

  describe('compressAboveBytes', () => {
    it.each([[-1], [1.5], ['1024']])(
      'is rejected by createTokenCache through the envelope (%p)',
      async (value) => {
        const caught = await thrownBy(() => cacheWith(value), ConfigurationError);
        expect(caught.message).toMatch(/^compressAboveBytes: expected a non-negative integer or false/);
      },
    );

    it('compresses above the default when not set', async () => {
      const envelope = new Envelope({ keys: new DataKeyCache(new LocalKeyRing({ masterKey })) });
      const compressible = Buffer.alloc(ENVELOPE_DEFAULTS.compressAboveBytes + 1, 'a');
      const atLimit = Buffer.alloc(ENVELOPE_DEFAULTS.compressAboveBytes, 'a');
      const big = await envelope.seal(compressible, 'k');
      const small = await envelope.seal(atLimit, 'k');
      expect(big.length).toBeLessThan(small.length);
    });
  });

  describe('DATA_KEY_BYTES', () => {
    it('is the master key size the local ring requires', () => {
      expect(() => new LocalKeyRing({ masterKey: Buffer.alloc(DATA_KEY_BYTES - 1) })).toThrow(
        new RegExp(`must be ${DATA_KEY_BYTES} bytes`),
      );
      expect(() => new LocalKeyRing({ masterKey })).not.toThrow();
    });
  });
});
