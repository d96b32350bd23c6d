/**
 * The key-ring contract suite: what every {@link KeyRing} promises the envelope and the
 * data-key cache (shared/crypto/keyring.ts), checked against a real ring. Each ring's test
 * calls {@link runKeyRingContract} with a fixture backed by its real service (the local
 * KMS, the local Key Vault) or none (the local ring). Ring-specific behaviour (error
 * mapping of each service fault, rotation, configuration) stays in the ring's own test.
 */
import { inspect } from 'node:util';
import { KeyServiceFailure } from '../../shared/errors';
import { transient } from '../../shared/cli/work';
import type { DataKey, KeyRing, PartitionKind, UnwrapContext } from '../../shared/crypto/keyring';
import { keyServiceError } from '../support/expect-errors';

/** What a ring is, known before its service starts (so the suite can pick its tests). */
export interface KeyRingTraits {
  /** The ring binds data keys to the partition kind (KMS: the encryption context). */
  readonly bindsPartitionKind: boolean;
  /** The ring talks to a service over the network (so it can be unreachable). */
  readonly remote: boolean;
}

/** What a ring's test hands to {@link runKeyRingContract}. */
export interface KeyRingFixture {
  /** The ring under test; shared by all tests of the suite. */
  readonly ring: KeyRing;
  /**
   * A ring of the same type that must not open `ring`'s data keys (another master key,
   * another app's encryption context, another vault and signing key), nor `ring` its.
   */
  readonly foreign: KeyRing;
  /**
   * A ring of the same type whose service stopped answering (nothing listens any more)
   * after it made `dataKey`. Required when remote.
   */
  readonly unreachable?: { readonly ring: KeyRing; readonly dataKey: DataKey };
  /** Releases whatever setup started. */
  teardown(): Promise<void>;
}

const KINDS: readonly PartitionKind[] = ['app', 'obo', 'user'];

/** What unwrapping `key` needs besides the wrapped bytes: its kind and attestation. */
function contextOf(key: DataKey, partitionKind: PartitionKind = 'obo'): UnwrapContext {
  return { partitionKind, attestation: key.attestation };
}

/** The data key in the encodings a careless message or cause could carry it. */
function spellings(plaintext: Uint8Array): string[] {
  const bytes = Buffer.from(plaintext);
  return [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')];
}

function expectNoKeyMaterial(error: Error, plaintext: Uint8Array): void {
  const text = `${error.message}\n${inspect((error as { cause?: unknown }).cause)}`;
  for (const spelling of spellings(plaintext)) expect(text).not.toContain(spelling);
}

function altered(bytes: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

/**
 * Runs the key-ring contract as one `describe` block.
 * @example runKeyRingContract('local', { bindsPartitionKind: false, remote: false }, async () => ({ ring, foreign, teardown: async () => {} }));
 */
export function runKeyRingContract(
  name: string,
  traits: KeyRingTraits,
  setup: () => Promise<KeyRingFixture>,
): void {
  describe(`${name} key-ring contract`, () => {
    let fixture: KeyRingFixture | undefined;

    beforeAll(async () => {
      fixture = await setup();
    });

    afterAll(async () => {
      await fixture?.teardown();
    });

    function ready(): KeyRingFixture {
      if (!fixture) throw new Error('key-ring fixture setup failed; see the beforeAll error');
      return fixture;
    }

    describe('name', () => {
      it('is a non-empty ring type of at most 255 bytes, the same for every ring of the type', () => {
        const { ring, foreign } = ready();

        expect(ring.name.length).toBeGreaterThan(0);
        expect(Buffer.byteLength(ring.name, 'utf8')).toBeLessThanOrEqual(255);
        expect(foreign.name).toBe(ring.name);
      });
    });

    describe('generateDataKey', () => {
      it.each(KINDS)(
        'returns a 32-byte key, wrapped (not in the clear), with the key that wrapped it (%s)',
        async (kind) => {
          const { ring } = ready();

          const key = await ring.generateDataKey({ partitionKind: kind });

          expect(key.plaintext).toHaveLength(32);
          expect(key.wrapped.length).toBeGreaterThan(0);
          expect(Buffer.from(key.wrapped).indexOf(Buffer.from(key.plaintext))).toBe(-1);
          expect(key.keyId.length).toBeGreaterThan(0);
        },
      );

      it('attests every data key exactly when the ring says it does', async () => {
        const { ring } = ready();

        const key = await ring.generateDataKey({ partitionKind: 'app' });

        if (ring.attestsDataKeys === true) {
          expect(key.attestation?.signingKeyId.length).toBeGreaterThan(0);
          expect(key.attestation?.signature.length).toBeGreaterThan(0);
        } else {
          expect(key.attestation).toBeUndefined();
        }
      });

      it('returns a fresh key on every call, also concurrently', async () => {
        const { ring } = ready();

        const keys = await Promise.all(
          Array.from({ length: 12 }, () => ring.generateDataKey({ partitionKind: 'obo' })),
        );

        const plaintexts = new Set(keys.map((k) => Buffer.from(k.plaintext).toString('hex')));
        const wrapped = new Set(keys.map((k) => Buffer.from(k.wrapped).toString('hex')));
        expect(plaintexts.size).toBe(keys.length);
        expect(wrapped.size).toBe(keys.length);
      });
    });

    describe('unwrapDataKey', () => {
      it.each(KINDS)('opens what generateDataKey wrapped, with the recorded key id (%s)', async (kind) => {
        const { ring } = ready();
        const key = await ring.generateDataKey({ partitionKind: kind });

        const opened = await ring.unwrapDataKey(key.wrapped, key.keyId, contextOf(key, kind));

        expect(Buffer.from(opened)).toEqual(Buffer.from(key.plaintext));
      });

      it('opens many keys concurrently, each to its own plaintext', async () => {
        const { ring } = ready();
        const keys = await Promise.all(
          Array.from({ length: 12 }, () => ring.generateDataKey({ partitionKind: 'user' })),
        );

        const opened = await Promise.all(
          keys.map((k) => ring.unwrapDataKey(k.wrapped, k.keyId, contextOf(k, 'user'))),
        );

        opened.forEach((plaintext, i) =>
          expect(Buffer.from(plaintext)).toEqual(Buffer.from(keys[i].plaintext)),
        );
      });

      it.each([
        ['first', (): number => 0],
        ['middle', (n: number) => Math.floor(n / 2)],
        ['last', (n: number) => n - 1],
      ])('refuses a wrapped key with its %s byte altered, naming the ring and unwrap', async (_where, at) => {
        const { ring } = ready();
        const key = await ring.generateDataKey({ partitionKind: 'obo' });

        const error = await keyServiceError(
          ring.unwrapDataKey(altered(key.wrapped, at(key.wrapped.length)), key.keyId, contextOf(key)),
        );

        expect(error.keyRing).toBe(ring.name);
        expect(error.operation).toBe('unwrap');
        expect([KeyServiceFailure.InvalidCiphertext, KeyServiceFailure.BadAttestation]).toContain(
          error.reason,
        );
        expectNoKeyMaterial(error, key.plaintext);
      });

      it('refuses a truncated and an empty wrapped key', async () => {
        const { ring } = ready();
        const key = await ring.generateDataKey({ partitionKind: 'obo' });

        const truncated = await keyServiceError(
          ring.unwrapDataKey(key.wrapped.subarray(0, key.wrapped.length - 1), key.keyId, contextOf(key)),
        );
        const empty = await keyServiceError(ring.unwrapDataKey(new Uint8Array(0), key.keyId, contextOf(key)));

        expect(truncated.operation).toBe('unwrap');
        expect(empty.operation).toBe('unwrap');
      });

      it("does not open a foreign ring's data keys, nor the foreign ring its", async () => {
        const { ring, foreign } = ready();
        const ours = await ring.generateDataKey({ partitionKind: 'obo' });
        const theirs = await foreign.generateDataKey({ partitionKind: 'obo' });

        const openedTheirs = await keyServiceError(
          ring.unwrapDataKey(theirs.wrapped, theirs.keyId, contextOf(theirs)),
        );
        const openedOurs = await keyServiceError(
          foreign.unwrapDataKey(ours.wrapped, ours.keyId, contextOf(ours)),
        );

        expect(openedTheirs.reason).not.toBe(KeyServiceFailure.Unavailable);
        expect(openedOurs.reason).not.toBe(KeyServiceFailure.Unavailable);
        expectNoKeyMaterial(openedTheirs, theirs.plaintext);
        expectNoKeyMaterial(openedOurs, ours.plaintext);
      });

      it('does not open a wrapped key presented under a key id it was not wrapped by', async () => {
        const { ring, foreign } = ready();
        const ours = await ring.generateDataKey({ partitionKind: 'obo' });
        const theirs = await foreign.generateDataKey({ partitionKind: 'obo' });

        const error = await keyServiceError(ring.unwrapDataKey(ours.wrapped, theirs.keyId, contextOf(ours)));

        expect(error.operation).toBe('unwrap');
      });

      if (traits.bindsPartitionKind) {
        it.each([
          ['obo', 'app'],
          ['app', 'user'],
          ['user', 'obo'],
        ] as const)(
          'does not open a data key made for %s as %s (keys are bound to the kind)',
          async (made, asked) => {
            const { ring } = ready();
            const key = await ring.generateDataKey({ partitionKind: made });

            const error = await keyServiceError(
              ring.unwrapDataKey(key.wrapped, key.keyId, contextOf(key, asked)),
            );

            expect(error.reason).toBe(KeyServiceFailure.InvalidCiphertext);
          },
        );
      }
    });

    describe('attestation', () => {
      it('an attesting ring refuses a data key without its attestation, with a copied one, or an altered one', async () => {
        const { ring } = ready();
        const key = await ring.generateDataKey({ partitionKind: 'obo' });
        const other = await ring.generateDataKey({ partitionKind: 'obo' });
        const attestation = key.attestation;
        const unattested = ring.unwrapDataKey(key.wrapped, key.keyId, { partitionKind: 'obo' });

        if (ring.attestsDataKeys !== true || !attestation || !other.attestation) {
          // A ring that does not attest opens without one (its wrap needs a secret).
          expect(attestation).toBeUndefined();
          expect(Buffer.from(await unattested)).toEqual(Buffer.from(key.plaintext));
          return;
        }
        const signature = altered(attestation.signature, 10);
        const outcomes = [
          await keyServiceError(unattested),
          await keyServiceError(
            ring.unwrapDataKey(key.wrapped, key.keyId, {
              partitionKind: 'obo',
              attestation: other.attestation,
            }),
          ),
          await keyServiceError(
            ring.unwrapDataKey(key.wrapped, key.keyId, {
              partitionKind: 'obo',
              attestation: { signingKeyId: attestation.signingKeyId, signature },
            }),
          ),
        ];

        expect(outcomes.map((e) => e.reason)).toEqual([
          KeyServiceFailure.BadAttestation,
          KeyServiceFailure.BadAttestation,
          KeyServiceFailure.BadAttestation,
        ]);
      });
    });

    if (traits.remote) {
      describe('an unreachable service', () => {
        it('fails generate and unwrap as unavailable, a transient failure callers retry', async () => {
          const { unreachable } = ready();
          if (!unreachable) throw new Error('a remote ring fixture must provide `unreachable`');
          const { ring, dataKey: key } = unreachable;

          const generate = await keyServiceError(ring.generateDataKey({ partitionKind: 'app' }));
          const unwrap = await keyServiceError(
            ring.unwrapDataKey(key.wrapped, key.keyId, contextOf(key, 'app')),
          );

          expect([generate.operation, unwrap.operation]).toEqual(['generate', 'unwrap']);
          expect([generate.reason, unwrap.reason]).toEqual([
            KeyServiceFailure.Unavailable,
            KeyServiceFailure.Unavailable,
          ]);
          expect([transient(generate), transient(unwrap)]).toEqual([true, true]);
          expectNoKeyMaterial(unwrap, key.plaintext);
        });
      });
    }

    describe('errors', () => {
      it('a refusal is never a transient failure (retrying cannot open it)', async () => {
        const { ring } = ready();
        const key = await ring.generateDataKey({ partitionKind: 'obo' });

        const error = await keyServiceError(
          ring.unwrapDataKey(altered(key.wrapped, 0), key.keyId, contextOf(key)),
        );

        expect(transient(error)).toBe(false);
      });
    });
  });
}
