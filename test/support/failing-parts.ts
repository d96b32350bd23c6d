/**
 * Fault injection for cache tests over MemoryStore and the local key ring: a store and a key
 * ring that fail as an unreachable service would (the errors the real adapters throw).
 */
import type { KeyRing } from '../../shared/crypto/keyring';
import { KeyServiceError, KeyServiceFailure, StoreUnavailableError } from '../../shared/errors';
import type { TokenStore } from '../../shared/store/store';

/** Fault injection: a store whose chosen operations fail as an unreachable service would. */
export class FailingStore implements TokenStore {
  readonly name = 'failing';
  readonly maxItemBytes: number;
  constructor(
    private readonly inner: TokenStore,
    private readonly fail: { read?: boolean; write?: boolean },
  ) {
    this.maxItemBytes = inner.maxItemBytes;
  }
  read(key: string) {
    if (this.fail.read)
      return Promise.reject(new StoreUnavailableError(this.name, 'read', 'connection refused'));
    return this.inner.read(key);
  }
  write(...args: Parameters<TokenStore['write']>) {
    if (this.fail.write)
      return Promise.reject(new StoreUnavailableError(this.name, 'write', 'connection refused'));
    return this.inner.write(...args);
  }
  delete(...args: Parameters<TokenStore['delete']>) {
    return this.inner.delete(...args);
  }
}

/** Fault injection: a key service that is down. */
export class UnavailableKeyRing implements KeyRing {
  readonly name = 'local';
  generateDataKey(): never {
    throw new KeyServiceError('local', 'generate', KeyServiceFailure.Unavailable, 'key service unreachable');
  }
  unwrapDataKey(): never {
    throw new KeyServiceError('local', 'unwrap', KeyServiceFailure.Unavailable, 'key service unreachable');
  }
}
