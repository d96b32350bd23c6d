/**
 * One token request per caller, however many requests and instances ask at once:
 * single flight inside a process, and a short lease in the store across instances.
 *
 * What is shared is only the promise of a call in flight, never an MSAL client or cache:
 * each request still builds its own client (STYLE.md rule 4).
 */
import { randomUUID } from 'node:crypto';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { Metric, type Logger, type Metrics } from '../observability';
import type { LeaseStore, TokenStore } from '../store/store';
import { isUnavailable, type PartitionKind, type Snapshot } from './session/snapshot';

/**
 * Concurrent calls with the same key share one call in flight: every caller gets its
 * result or its error. The entry is removed when the call settles, so a failure is not
 * remembered; past `maxInFlight` distinct keys, calls run on their own (never refused).
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  constructor(private readonly maxInFlight: number) {}

  /** Keys with a call in flight (for tests). */
  get size(): number {
    return this.inFlight.size;
  }

  /** Runs `fn`, or joins the call in flight under `key`; `joined` says which. */
  run(key: string, fn: () => Promise<T>): { readonly promise: Promise<T>; readonly joined: boolean } {
    const existing = this.inFlight.get(key);
    if (existing) return { promise: existing, joined: true };
    if (this.inFlight.size >= this.maxInFlight) return { promise: fn(), joined: false };
    const promise = fn().finally(() => {
      if (this.inFlight.get(key) === promise) this.inFlight.delete(key);
    });
    this.inFlight.set(key, promise);
    return { promise, joined: false };
  }
}

/** Settings of the cross-instance lease (see TokenCacheOptions.coalescing). */
export interface LeaseSettings {
  readonly leaseTtlMs: number;
  readonly maxWaitMs: number;
  readonly pollBaseMs: number;
  readonly pollMaxMs: number;
}

/** What a gate needs of the partition session. */
export interface GatedPartition {
  /** The partition as read before MSAL ran (undefined: not loaded). */
  readonly current: Snapshot | undefined;
  /** Reads the partition again, past L1. */
  refresh(): Promise<Snapshot>;
}

/** How the gate let the token request through, or why it did not. */
export type GateOutcome =
  /** This request holds the lease: call the authority. */
  | 'holder'
  /** Another instance wrote the partition meanwhile: run MSAL again on what it wrote. */
  | 'served'
  /** The holder's lease ran out (it died or was slow): this request took it over. */
  | 'takeover'
  /** The wait passed its bound: call the authority without a lease. */
  | 'timeout'
  /** The store failed: call the authority, as without leases. */
  | 'unavailable';

/**
 * The lease of one request on one token request (partition and request fingerprint),
 * consulted only when MSAL is about to call the token endpoint, i.e. on a miss: a hit
 * costs nothing. It never fails the request: every path ends in calling the authority
 * or in being served from the store.
 */
export class LeaseGate {
  private decided: Promise<GateOutcome> | undefined;
  private held = false;
  private readonly owner = randomUUID();
  /** True once the gate stopped the token request because the partition changed. */
  served = false;

  constructor(
    private readonly store: TokenStore & LeaseStore,
    private readonly leaseKey: string,
    private readonly partition: GatedPartition,
    private readonly settings: LeaseSettings,
    /** Epoch ms after which waiting ends (shared by the reruns of one request). */
    private readonly deadline: number,
    private readonly ctx: {
      readonly metrics: Metrics;
      readonly logger: Logger;
      readonly now: () => number;
      readonly kind: PartitionKind;
    },
  ) {}

  /** Decides once per gate; later token requests of the same MSAL call pass. */
  beforeTokenRequest(): Promise<GateOutcome> {
    this.decided ??= this.decide();
    return this.decided;
  }

  /** Ends the request's use of the lease: releases it if held. Never throws. */
  async settle(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    try {
      this.ctx.metrics.increment(Metric.StoreLease, 1, { kind: this.ctx.kind, operation: 'release' });
      await this.store.releaseLease(this.leaseKey, this.owner);
    } catch (e) {
      this.failed('release', e); // it expires on its own
    }
  }

  private async decide(): Promise<GateOutcome> {
    // The store down, or the key service (locked): no lease can tell who calls the authority.
    if (isUnavailable(this.partition.current)) return this.outcome('unavailable');
    const base = this.partition.current?.version;
    try {
      if (await this.tryAcquire()) return this.outcome('holder');
    } catch (e) {
      this.failed('acquire', e);
      return this.outcome('unavailable');
    }
    for (let attempt = 0; ; attempt++) {
      await sleep(this.pollDelay(attempt));
      const fresh = await this.partition.refresh();
      if (isUnavailable(fresh)) return this.outcome('unavailable');
      if (fresh.version !== base) {
        this.served = true;
        return this.outcome('served');
      }
      if (this.ctx.now() >= this.deadline) return this.outcome('timeout');
      try {
        // Free again only if the holder released it (done, or its call failed) or it expired.
        if (!(await this.tryAcquire())) continue;
      } catch (e) {
        this.failed('acquire', e);
        return this.outcome('unavailable');
      }
      // A holder writes before it releases: if it released between the read above and
      // the lease just taken, this read sees its write.
      const after = await this.partition.refresh();
      if (!isUnavailable(after) && after.version !== base) {
        this.served = true;
        return this.outcome('served');
      }
      return this.outcome('takeover');
    }
  }

  private async tryAcquire(): Promise<boolean> {
    this.ctx.metrics.increment(Metric.StoreLease, 1, { kind: this.ctx.kind, operation: 'acquire' });
    this.held = await this.store.acquireLease(this.leaseKey, {
      owner: this.owner,
      ttlMs: this.settings.leaseTtlMs,
    });
    return this.held;
  }

  private outcome(outcome: GateOutcome): GateOutcome {
    this.ctx.metrics.increment(Metric.Lease, 1, { kind: this.ctx.kind, outcome });
    return outcome;
  }

  private failed(operation: 'acquire' | 'release', e: unknown): void {
    this.ctx.metrics.increment(Metric.StoreError, 1, {
      kind: this.ctx.kind,
      operation: `lease-${operation}`,
    });
    this.ctx.logger.warn('token request lease failed; going to the authority without it', {
      partition: this.ctx.kind,
      operation,
      error: e instanceof Error ? e.name : 'unknown',
      code: (e as { code?: string }).code ?? '',
      detail: e instanceof Error ? e.message : String(e),
    });
  }

  /** Full jitter on a doubling ceiling, never past the deadline. */
  private pollDelay(attempt: number): number {
    const { pollBaseMs, pollMaxMs } = this.settings;
    const ceiling = Math.min(pollMaxMs, pollBaseMs * 2 ** attempt);
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    return Math.max(1, Math.min(delay, this.deadline - this.ctx.now()));
  }
}

/** Thrown by {@link GatedNetwork} to stop MSAL's token request when the store served it. */
export class ServedFromStore extends Error {
  override readonly name = 'ServedFromStore';
  constructor() {
    super('another instance stored the token meanwhile; the request is served from the store');
  }
}

/**
 * MSAL's network module for one request: a token request (the only POST MSAL makes)
 * first passes the lease gate. GETs (metadata) pass straight through.
 */
export class GatedNetwork implements INetworkModule {
  constructor(
    private readonly inner: INetworkModule,
    private readonly gate: LeaseGate,
  ) {}

  sendGetRequestAsync<T>(
    url: string,
    options?: NetworkRequestOptions,
    timeout?: number,
  ): Promise<NetworkResponse<T>> {
    return this.inner.sendGetRequestAsync<T>(url, options, timeout);
  }

  async sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    if ((await this.gate.beforeTokenRequest()) === 'served') throw new ServedFromStore();
    return this.inner.sendPostRequestAsync<T>(url, options);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
