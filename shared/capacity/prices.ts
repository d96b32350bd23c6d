/**
 * Published on-demand prices and service limits the capacity model uses (US East, USD).
 * Each figure names the page it comes from and the date the page gave it; prices change,
 * so docs/scale.md prints these beside every cost it shows. Read on 2026-12-02 from stored
 * copies of the pages (this machine has no web access): check the pages before you budget.
 */

/** One published figure with where it comes from. */
export interface Cited {
  readonly value: number;
  /** What the value counts, in words. */
  readonly unit: string;
  /** The page that publishes it. */
  readonly source: string;
  /** The date the page gives for the figure (or its last change). */
  readonly asOf: string;
}

/** When the figures below were read from their pages. */
export const PRICES_READ_ON = '2026-12-02';

/** Prices (USD) and limits the model needs, each cited. */
export const PRICES = {
  dynamodb: {
    /** On-demand writes (after the 2024-11-01 price cut, us-east-1). */
    writeRequestUnit: {
      value: 0.625 / 1e6,
      unit: 'USD per write request unit (1 KB written; a failed conditional write is billed too)',
      source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
      asOf: '2024-11-01',
    },
    readRequestUnit: {
      value: 0.125 / 1e6,
      unit: 'USD per read request unit (one strongly consistent read of up to 4 KB, or two eventually consistent)',
      source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
      asOf: '2024-11-01',
    },
    partitionReadUnitsPerSecond: {
      value: 3000,
      unit: 'read units per second one partition serves (one item is never split)',
      source: 'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html',
      asOf: '2024-01-01',
    },
    partitionWriteUnitsPerSecond: {
      value: 1000,
      unit: 'write units per second one partition serves',
      source: 'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html',
      asOf: '2024-01-01',
    },
  },
  cosmos: {
    serverlessRequestUnit: {
      value: 0.25 / 1e6,
      unit: 'USD per request unit, serverless account',
      source: 'https://azure.microsoft.com/en-us/pricing/details/cosmos-db/serverless/',
      asOf: '2024-05-01',
    },
    provisionedPer100RuPerHour: {
      value: 0.008,
      unit: 'USD per 100 RU/s provisioned per hour, single-region writes (manual throughput)',
      source: 'https://azure.microsoft.com/en-us/pricing/details/cosmos-db/autoscale-provisioned/',
      asOf: '2024-05-01',
    },
    multiRegionWritesPer100RuPerHour: {
      value: 0.016,
      unit: 'USD per 100 RU/s provisioned per hour and region, multi-region writes',
      source: 'https://azure.microsoft.com/en-us/pricing/details/cosmos-db/autoscale-provisioned/',
      asOf: '2024-05-01',
    },
    pointReadRuPerKb: {
      value: 1,
      unit: 'RU of a point read of a 1 KB item, session or eventual consistency (strong and bounded staleness: x2)',
      source: 'https://learn.microsoft.com/en-us/azure/cosmos-db/request-units',
      asOf: '2024-08-14',
    },
    writeRuPerKb: {
      value: 5.5,
      unit: 'RU of a point write (create/replace) of a 1 KB item with default indexing (typical, the page gives ~5.5)',
      source: 'https://learn.microsoft.com/en-us/azure/cosmos-db/optimize-cost-reads-writes',
      asOf: '2024-08-14',
    },
    logicalPartitionRuPerSecond: {
      value: 10_000,
      unit: 'RU/s one physical partition serves; one logical partition (one item here) is never split',
      source: 'https://learn.microsoft.com/en-us/azure/cosmos-db/partitioning-overview',
      asOf: '2024-08-14',
    },
  },
  kms: {
    request: {
      value: 0.03 / 10_000,
      unit: 'USD per symmetric request (GenerateDataKey, Decrypt)',
      source: 'https://aws.amazon.com/kms/pricing/',
      asOf: '2024-05-01',
    },
    requestsPerSecondQuota: {
      value: 10_000,
      unit: 'cryptographic requests per second per account and region, shared (5,500, 10,000 or 50,000 by region)',
      source: 'https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html',
      asOf: '2024-05-01',
    },
  },
  keyVault: {
    transaction: {
      value: 0.03 / 10_000,
      unit: 'USD per software-protected RSA 2048 / EC key transaction (wrapKey, unwrapKey, sign)',
      source: 'https://azure.microsoft.com/en-us/pricing/details/key-vault/',
      asOf: '2024-05-01',
    },
    transactionsPerSecondLimit: {
      value: 400,
      unit: 'RSA 2048 software-key transactions per second per vault (4,000 per 10 s)',
      source: 'https://learn.microsoft.com/en-us/azure/key-vault/general/service-limits',
      asOf: '2024-08-14',
    },
  },
} as const satisfies Record<string, Record<string, Cited>>;

/** Seconds in the month the monthly figures use (30 days). */
export const SECONDS_PER_MONTH = 30 * 24 * 3600;
