/**
 * Concurrent first reads of one partition in one process share one store read. A fleet
 * serving a hot partition (the daemon's app partition, a busy caller) with many requests
 * in flight per instance otherwise sends one GetItem per request, all for the same item:
 * N concurrent requests cost N read units where one answers them all (docs/scale.md).
 *
 * Safe for the first load of a request only: the shared read started at most one store
 * round trip before the request, so what it returns is no staler than an L1 entry, and a
 * stale read only costs a token call while a stale write fails its version check. Reads
 * that must see a write made after they were asked for (a lease waiter's poll, the
 * re-read after a conflict) never join: they go to the store themselves.
 */
import type { StoredItem, TokenStore } from '../store/store';
import { SingleFlight } from './coalescing';

/** Most partitions with a shared read in flight at once; past it reads run alone. */
const MAX_IN_FLIGHT = 10_000;

/** The store reads of this process in flight, by store key. */
export class SharedReads {
  private readonly flights: SingleFlight<StoredItem | undefined>;

  constructor(maxInFlight: number = MAX_IN_FLIGHT) {
    this.flights = new SingleFlight(maxInFlight);
  }

  /** Partitions with a read in flight (for tests). */
  get size(): number {
    return this.flights.size;
  }

  /**
   * Reads `key` from `store`, or joins the read of it already in flight; `joined` says
   * which (a joined caller made no store call). Every caller gets the same item or error.
   */
  read(
    store: TokenStore,
    key: string,
  ): { readonly promise: Promise<StoredItem | undefined>; readonly joined: boolean } {
    return this.flights.run(key, () => store.read(key));
  }
}
