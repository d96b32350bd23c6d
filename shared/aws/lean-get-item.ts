/**
 * A GetItem written by hand, for {@link DynamoDbStore}'s reads. It is hand-written because
 * the SDK has no cheaper GetItem: `client.send(GetItemCommand)` spends ~3x the CPU of the
 * request itself on schema serde, endpoint rules, the middleware stack and a new signer per
 * call (bench/lean-getitem.ts). Everything that matters is still the client's own: its
 * credentials provider (called on every signature, so refresh is kept), its signer and clock
 * offset, its request handler (agent, keep-alive, TLS, timeouts) and stream collector, and
 * the endpoint, host and user agent of a GetItem the SDK itself sent ({@link LeanGetItem.learnFrom}).
 *
 * It makes exactly one attempt and never reports an error: anything but a clean 200 with a
 * well-formed body ends in `undefined`, and the caller does the read again through
 * `client.send`, whose retries, throttling handling and error classes then decide.
 */
import { crc32 } from 'node:zlib';
import { DynamoDBClient, type AttributeValue, type GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { HttpRequest, HttpResponse, RequestSigner } from '@smithy/types';

/** What a lean read found: the item's attributes, or none (absent). */
export interface LeanGetItemResult {
  readonly item: Record<string, AttributeValue> | undefined;
}

/** Where and how the SDK sent a GetItem: all a lean request copies from it. */
interface Target {
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number | undefined;
  readonly path: string;
  /** The SDK's headers minus those that change per request (signature, date, attempt). */
  readonly headers: Readonly<Record<string, string>>;
  /** The auth scheme of the SDK's endpoint, as its signer provider wants it. */
  readonly authScheme: unknown;
}

/** Headers the SDK computes per request; the lean request computes its own or sends none. */
const PER_REQUEST_HEADERS = new Set([
  'authorization',
  'x-amz-date',
  'x-amz-security-token',
  'x-amz-content-sha256',
  'amz-sdk-invocation-id',
  'amz-sdk-request',
  'content-length',
]);

let sdkStack: readonly string[] | undefined;

/**
 * The middleware a DynamoDBClient has by itself (no client option adds any), identified
 * once per process from a client that is never used.
 */
function ownStack(): readonly string[] {
  if (!sdkStack) {
    const bare = new DynamoDBClient({ region: 'us-east-1' });
    sdkStack = bare.middlewareStack.identify();
    bare.destroy();
  }
  return sdkStack;
}

/** The client config members a lean read uses (all set on every DynamoDBClient). */
interface LeanConfig {
  readonly credentials: unknown;
  readonly signer: (authScheme?: unknown) => Promise<RequestSigner>;
  readonly systemClockOffset?: number;
  readonly disableClockSkewCorrection?: () => Promise<boolean>;
  readonly requestHandler: {
    handle(request: HttpRequest, options?: { requestTimeout?: number }): Promise<{ response: HttpResponse }>;
  };
  readonly streamCollector: (body: unknown) => Promise<Uint8Array>;
}

/** Lean GetItems of one table through one client (see the module comment). */
export class LeanGetItem {
  private readonly config: LeanConfig;
  private target: Target | undefined;
  private signer: RequestSigner | undefined;
  private signerCredentials: unknown;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    /** Request timeout of the one attempt; undefined leaves it to the client's handler. */
    private readonly timeoutMs: number | undefined,
  ) {
    this.config = client.config as unknown as LeanConfig;
  }

  /**
   * Whether a lean read may replace `client.send` now: the target is known and the
   * client's middleware stack is exactly the SDK's own, so nothing anyone added (tracing,
   * fault injection, headers) is skipped. Checked per read (~4 µs), so middleware added
   * after the store was built is noticed at the next read.
   */
  ready(): boolean {
    return this.target !== undefined && this.stackIsOwn();
  }

  /** Whether the target is still to be learned from a GetItem the SDK sends. */
  get learning(): boolean {
    return this.target === undefined;
  }

  /**
   * Notes, on `command`'s own stack (the client's stays as it is), where the SDK sends it
   * and with which host and user agent; later lean reads go there the same way.
   */
  learnFrom(command: GetItemCommand): void {
    if (!this.stackIsOwn()) return;
    command.middlewareStack.add(
      (next, context) => (args) => {
        // Middleware added while this read was on its way may have changed the request.
        if (this.target || !this.stackIsOwn()) return next(args);
        const request = args.request as HttpRequest;
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(request.headers)) {
          if (!PER_REQUEST_HEADERS.has(name.toLowerCase())) headers[name.toLowerCase()] = value;
        }
        const endpoint = (context as { endpointV2?: { properties?: { authSchemes?: unknown[] } } })
          .endpointV2;
        this.target = {
          protocol: request.protocol,
          hostname: request.hostname,
          port: request.port,
          path: request.path,
          headers,
          authScheme: endpoint?.properties?.authSchemes?.[0],
        };
        return next(args);
      },
      { step: 'deserialize', priority: 'low', name: 'leanGetItemLearnTarget' },
    );
  }

  /** One GetItem attempt; `undefined` when anything went wrong (the caller then asks the SDK). */
  async get(key: string): Promise<LeanGetItemResult | undefined> {
    const target = this.target;
    if (!target) return undefined;
    try {
      const body = JSON.stringify({
        TableName: this.tableName,
        Key: { pk: { S: key } },
        ConsistentRead: true,
      });
      const signer = await this.currentSigner(target);
      const request = await signer.sign(
        {
          method: 'POST',
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port,
          path: target.path,
          query: {},
          headers: { ...target.headers, 'content-length': String(Buffer.byteLength(body)) },
          body,
        },
        {
          // As the SDK's own signer does: the server's clock as the client last learned it.
          signingDate:
            (await this.config.disableClockSkewCorrection?.()) === true
              ? new Date()
              : new Date(Date.now() + (this.config.systemClockOffset ?? 0)),
        },
      );
      const { response } = await this.config.requestHandler.handle(
        request,
        this.timeoutMs === undefined ? {} : { requestTimeout: this.timeoutMs },
      );
      const bytes = await this.config.streamCollector(response.body);
      if (response.statusCode !== 200) return undefined;
      return parse(bytes, response.headers['x-amz-crc32']);
    } catch {
      // Network error, timeout, credentials or signing failure: the SDK path reports it.
      return undefined;
    }
  }

  /** The client's signer, made again if the client's credentials provider was replaced. */
  private async currentSigner(target: Target): Promise<RequestSigner> {
    const credentials = this.config.credentials;
    if (!this.signer || this.signerCredentials !== credentials) {
      this.signer = await this.config.signer(target.authScheme);
      this.signerCredentials = credentials;
    }
    return this.signer;
  }

  private stackIsOwn(): boolean {
    const own = ownStack();
    const stack = this.client.middlewareStack.identify();
    if (stack.length !== own.length) return false;
    for (let i = 0; i < own.length; i++) if (stack[i] !== own[i]) return false;
    return true;
  }
}

/**
 * The item of a GetItem answer, or `undefined` (as "not lean") when the body does not
 * match its CRC32 or is not a GetItem answer. `B` values are base64 in the JSON protocol.
 */
function parse(bytes: Uint8Array, checksum: string | undefined): LeanGetItemResult | undefined {
  if (checksum !== undefined && String(crc32(bytes)) !== checksum) return undefined;
  let answer: unknown;
  try {
    answer = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(answer)) return undefined;
  const raw = answer['Item'];
  if (raw === undefined) return { item: undefined };
  if (!isObject(raw)) return undefined;
  const item: Record<string, AttributeValue> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!isObject(value)) return undefined;
    const b = value['B'];
    if (b !== undefined) {
      if (typeof b !== 'string') return undefined;
      const decoded = Buffer.from(b, 'base64');
      item[name] = { B: new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength) };
    } else {
      // S and N are strings in the JSON as in the SDK's shape; the store reads no other type.
      item[name] = value as unknown as AttributeValue;
    }
  }
  return { item };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
