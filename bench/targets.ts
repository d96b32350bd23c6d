/**
 * The targets of issue 16 that `bench/results/latest.json` carries as `targets`: one
 * `{ id, value, goal, met }` per id, in this order, whether or not its section ran (a
 * target not measured has `value: null, met: false`). The README quotes these ids.
 * Pure functions; unit-tested in test/unit/bench/targets.test.ts.
 */

/** How a measured value is compared with its goal. */
export type GoalKind = 'at-most' | 'equal';

/** One target: its id, goal and what the value is. */
export interface TargetDefinition {
  readonly id: TargetId;
  readonly goal: number;
  readonly kind: GoalKind;
  readonly unit: string;
  /** What the value is, for the table. */
  readonly description: string;
}

/** Every target id, in table order (issue 16's table, then issue 19's scale-model-error). */
export const TARGET_IDS = [
  'warm-hit-cpu-vs-getitem',
  'warm-hit-wall-1ms-network-vs-floor',
  'l1-hit-p50-us',
  'memo-off-penalty-ms',
  'active-callers-5000-flat',
  'herd-token-calls',
  'bundle-kib',
  'cold-import-vs-sdk-floor',
  'tokens-lost',
  'scale-model-error',
] as const;

export type TargetId = (typeof TARGET_IDS)[number];

/** Goals, as the issues state them. */
export const TARGETS: Readonly<Record<TargetId, TargetDefinition>> = {
  'warm-hit-cpu-vs-getitem': {
    id: 'warm-hit-cpu-vs-getitem',
    goal: 1.0,
    kind: 'at-most',
    unit: 'x',
    description: "(a)'s CPU per warm L1-off hit / the raw SDK GetItem floor's CPU, p50, worse of OBO and app",
  },
  'warm-hit-wall-1ms-network-vs-floor': {
    id: 'warm-hit-wall-1ms-network-vs-floor',
    goal: 1.02,
    kind: 'at-most',
    unit: 'x',
    description: "(a) p50 / the store floor's p50 (same client, same item), through the 1 ms proxy",
  },
  'l1-hit-p50-us': {
    id: 'l1-hit-p50-us',
    goal: 25,
    kind: 'at-most',
    unit: 'µs',
    description: '(b) L1 hit p50, worse of OBO and app',
  },
  'memo-off-penalty-ms': {
    id: 'memo-off-penalty-ms',
    goal: 0.1,
    kind: 'at-most',
    unit: 'ms',
    description: 'memo-off p50 - memo-on (a) p50, worse of OBO and app',
  },
  'active-callers-5000-flat': {
    id: 'active-callers-5000-flat',
    goal: 1.1,
    kind: 'at-most',
    unit: 'x',
    description: '(a) p50 at 5,000 active callers / (a) p50 at 100',
  },
  'herd-token-calls': {
    id: 'herd-token-calls',
    goal: 1,
    kind: 'at-most',
    unit: 'calls',
    description: 'token calls in the worst herd cell, coalescing on (the default)',
  },
  'bundle-kib': {
    id: 'bundle-kib',
    goal: 700,
    kind: 'at-most',
    unit: 'KiB',
    description: 'the shipped web-API Lambda bundle',
  },
  'cold-import-vs-sdk-floor': {
    id: 'cold-import-vs-sdk-floor',
    goal: 1.3,
    kind: 'at-most',
    unit: 'x',
    description:
      'import p50 of the shipped web-API bundle / of a bundle of msal-node + DynamoDB client alone',
  },
  'tokens-lost': {
    id: 'tokens-lost',
    goal: 0,
    kind: 'equal',
    unit: 'tokens',
    description: 'tokens lost by (a) under contention',
  },
  'scale-model-error': {
    id: 'scale-model-error',
    goal: 0.05,
    kind: 'at-most',
    unit: '',
    description: "largest relative error of the capacity model's predicted counts against the simulation",
  },
};

/** One entry of `targets` in latest.json. */
export interface TargetResult {
  readonly id: TargetId;
  /** null: not measured in this run (the section failed or did not run). */
  readonly value: number | null;
  readonly goal: number;
  readonly met: boolean;
}

/** Whether `value` meets the goal of `id`; a value not measured never does. */
export function meets(id: TargetId, value: number | null): boolean {
  if (value === null || !Number.isFinite(value)) return false;
  const t = TARGETS[id];
  return t.kind === 'equal' ? value === t.goal : value <= t.goal;
}

/**
 * The `targets` array from measured values: exactly {@link TARGET_IDS}, in order.
 * @throws RangeError for a key that is not a target id (a typo must not pass silently)
 */
export function buildTargets(values: Partial<Record<string, number | null>>): TargetResult[] {
  for (const key of Object.keys(values)) {
    if (!(TARGET_IDS as readonly string[]).includes(key)) {
      throw new RangeError(`unknown target id "${key}"; expected one of ${TARGET_IDS.join(', ')}`);
    }
  }
  return TARGET_IDS.map((id) => {
    const raw = values[id];
    const value = raw === undefined || raw === null || !Number.isFinite(raw) ? null : raw;
    return { id, value, goal: TARGETS[id].goal, met: meets(id, value) };
  });
}

/** The parts of the results the targets are read from (structurally, so tests can build them). */
export interface TargetInputs {
  readonly latency?: {
    readonly series: Record<
      'a' | 'b' | 'e' | 'g',
      Record<
        'obo' | 'app',
        { readonly wall: { readonly p50: number }; readonly cpu: { readonly p50: number } }
      >
    >;
  };
  readonly network?: {
    readonly levels: readonly {
      readonly delayMs: number;
      readonly aVsStoreFloorP50: Record<'obo' | 'app', number>;
    }[];
  };
  readonly activeCallers?: { readonly levels: readonly number[]; readonly growthP50: { readonly a: number } };
  readonly herd?: { readonly cells: readonly { readonly mode: string; readonly tokenCalls: number }[] };
  readonly coldStart?: {
    readonly entries: readonly { readonly id: string; readonly bundleBytes: number }[];
    readonly importVsSdkFloor?: number;
  };
  readonly contention?: { readonly a: { readonly tokensLost: number } };
  readonly scaleModel?: { readonly error: number };
}

const worse = (values: readonly number[]): number | null => (values.length ? Math.max(...values) : null);

/** Each target's value in a run's results (null where its section did not run or failed). */
export function measuredTargets(r: TargetInputs): Record<TargetId, number | null> {
  const kinds = ['obo', 'app'] as const;
  const lat = r.latency;
  const oneMs = r.network?.levels.find((l) => l.delayMs === 1);
  const coalesced = r.herd?.cells.filter((c) => c.mode === 'coalesced') ?? [];
  const web = r.coldStart?.entries.find((e) => e.id === 'web-api');
  const active = r.activeCallers;
  return {
    'warm-hit-cpu-vs-getitem': lat
      ? worse(kinds.map((k) => lat.series.a[k].cpu.p50 / lat.series.e[k].cpu.p50))
      : null,
    'warm-hit-wall-1ms-network-vs-floor': oneMs ? worse(kinds.map((k) => oneMs.aVsStoreFloorP50[k])) : null,
    'l1-hit-p50-us': lat ? worse(kinds.map((k) => lat.series.b[k].wall.p50 * 1000)) : null,
    'memo-off-penalty-ms': lat
      ? worse(kinds.map((k) => lat.series.g[k].wall.p50 - lat.series.a[k].wall.p50))
      : null,
    'active-callers-5000-flat':
      active && active.levels.includes(5000) && active.levels.includes(100) ? active.growthP50.a : null,
    'herd-token-calls': worse(coalesced.map((c) => c.tokenCalls)),
    'bundle-kib': web ? web.bundleBytes / 1024 : null,
    'cold-import-vs-sdk-floor': r.coldStart?.importVsSdkFloor ?? null,
    'tokens-lost': r.contention ? r.contention.a.tokensLost : null,
    'scale-model-error': r.scaleModel ? r.scaleModel.error : null,
  };
}
