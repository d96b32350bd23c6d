/**
 * A minimal server for AWS's JSON 1.1 RPC protocol, shared by the local KMS and the local
 * Secrets Manager: `POST /`, `x-amz-target: <prefix>.<Operation>`, bodies in
 * `application/x-amz-json-1.1`, errors as HTTP 4xx/5xx with `{"__type": ..., "message": ...}`
 * (the AWS SDK turns `__type` into its typed exception). SigV4 signatures are accepted
 * unchecked: these servers run on a developer's machine and in tests, never in front of data
 * that matters.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen, readBody } from '../http';

/** A JSON request or response body. */
export type JsonObject = Record<string, unknown>;

/** An error answered in the AWS JSON shape; `type` becomes the SDK exception's `name`. */
export class AwsJsonError extends Error {
  override readonly name = 'AwsJsonError';
  constructor(
    /** The `__type`, e.g. `NotFoundException`. */
    readonly type: string,
    message: string,
    /** HTTP status. @default 400 */
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Returned by a handler to leave the request unanswered (until the client gives up or the server stops). */
export const noAnswer: unique symbol = Symbol('noAnswer');

/** Answers one operation: the response body, or {@link noAnswer}. Throw {@link AwsJsonError} to fail it. */
export type OperationHandler = (
  operation: string,
  input: JsonObject,
  /** The request's `Authorization` header (SigV4), for servers that evaluate per-caller policies. */
  request: { readonly authorization: string | undefined },
) => Promise<JsonObject | typeof noAnswer>;

/** Per-operation request counts of a local server. */
export interface CallCounters {
  /** Requests received for `operation`, or for all operations when omitted (faulted ones included). */
  calls(operation?: string): number;
  /** Sets every count back to zero. */
  reset(): void;
}

/** Options of {@link startAwsJsonServer}. */
export interface AwsJsonServerOptions {
  /** The `x-amz-target` prefix before the dot, e.g. `TrentService`. */
  readonly targetPrefix: string;
  /** TCP port on 127.0.0.1. @default 0 (any free port) */
  readonly port?: number;
  /** Name of the message field in error bodies (KMS uses `message`, Secrets Manager `Message`). @default 'message' */
  readonly messageField?: 'message' | 'Message';
  readonly handle: OperationHandler;
}

/** A running JSON 1.1 server. */
export interface AwsJsonServer {
  /** `http://127.0.0.1:<port>`, ready for an SDK client's `endpoint`. */
  readonly endpoint: string;
  readonly counters: CallCounters;
  /** Closes the listener and every open connection, unanswered requests included. Safe to call twice. */
  stop(): Promise<void>;
}

const maxBodyBytes = 1024 * 1024;

/** Starts a JSON 1.1 server on 127.0.0.1 that hands each operation to `options.handle`. */
export async function startAwsJsonServer(options: AwsJsonServerOptions): Promise<AwsJsonServer> {
  const counts = new Map<string, number>();
  const counters: CallCounters = {
    calls: (operation) =>
      operation === undefined
        ? [...counts.values()].reduce((sum, n) => sum + n, 0)
        : (counts.get(operation) ?? 0),
    reset: () => counts.clear(),
  };
  const messageField = options.messageField ?? 'message';

  const sendJson = (res: ServerResponse, status: number, body: JsonObject): void => {
    const payload = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': Buffer.byteLength(payload),
      'x-amzn-requestid': randomUUID(),
    });
    res.end(payload);
  };
  const sendError = (res: ServerResponse, error: AwsJsonError): void =>
    sendJson(res, error.status, { __type: error.type, [messageField]: error.message });

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const target = req.headers['x-amz-target'];
    const prefix = `${options.targetPrefix}.`;
    if (
      req.method !== 'POST' ||
      (req.url ?? '/') !== '/' ||
      typeof target !== 'string' ||
      !target.startsWith(prefix)
    ) {
      req.resume();
      throw new AwsJsonError(
        'UnknownOperationException',
        `expected POST / with x-amz-target ${prefix}<Operation>, got ${req.method} ${req.url} target ${String(target)}`,
      );
    }
    const operation = target.slice(prefix.length);
    counts.set(operation, (counts.get(operation) ?? 0) + 1);
    const input = parseBody(
      await readBody(
        req,
        maxBodyBytes,
        () => new AwsJsonError('SerializationException', `request body larger than ${maxBodyBytes} bytes`),
      ),
    );
    const output = await options.handle(operation, input, { authorization: req.headers.authorization });
    if (output === noAnswer) return;
    sendJson(res, 200, output);
  };

  const server = createServer((req, res) => {
    serve(req, res).catch((e: unknown) => {
      if (res.headersSent || res.destroyed) return;
      sendError(
        res,
        e instanceof AwsJsonError
          ? e
          : new AwsJsonError(
              'InternalFailure',
              `local server error: ${(e as Error)?.message ?? String(e)}`,
              500,
            ),
      );
    });
  });
  const port = await listen(server, options.port ?? 0, '127.0.0.1');

  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counters,
    stop: () => {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive sockets of SDK clients and deliberately unanswered requests would
        // otherwise hold close() open forever.
        server.closeAllConnections();
      });
      return stopped;
    },
  };
}

function parseBody(body: Buffer): JsonObject {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new AwsJsonError('SerializationException', 'request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new AwsJsonError('SerializationException', 'request body must be a JSON object');
  }
  return parsed as JsonObject;
}

/** Reads a string member; `required` fails like AWS's model validation when it is absent. */
export function stringMember(input: JsonObject, member: string, required: true): string;
export function stringMember(input: JsonObject, member: string, required?: false): string | undefined;
export function stringMember(input: JsonObject, member: string, required = false): string | undefined {
  const value = input[member];
  if (value === undefined || value === null) {
    if (required) throw validationError(member, 'Member must not be null', 'null');
    return undefined;
  }
  if (typeof value !== 'string')
    throw validationError(member, 'Member must be a string', JSON.stringify(value));
  return value;
}

/** Reads a base64 blob member as bytes. */
export function blobMember(input: JsonObject, member: string, required: true): Buffer;
export function blobMember(input: JsonObject, member: string, required?: false): Buffer | undefined;
export function blobMember(input: JsonObject, member: string, required = false): Buffer | undefined {
  const text = required ? stringMember(input, member, true) : stringMember(input, member);
  if (text === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new AwsJsonError('SerializationException', `${member} is not valid base64`);
  }
  return Buffer.from(text, 'base64');
}

/** Reads an integer member. */
export function integerMember(input: JsonObject, member: string): number | undefined {
  const value = input[member];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw validationError(member, 'Member must be an integer', JSON.stringify(value));
  }
  return value;
}

/** Reads a string-to-string map member (e.g. an encryption context). */
export function stringMapMember(input: JsonObject, member: string): Record<string, string> | undefined {
  const value = input[member];
  if (value === undefined || value === null) return undefined;
  if (
    typeof value !== 'object' ||
    Array.isArray(value) ||
    !Object.values(value as JsonObject).every((v) => typeof v === 'string')
  ) {
    throw validationError(member, 'Member must be a map of strings to strings', JSON.stringify(value));
  }
  return value as Record<string, string>;
}

/** A `ValidationException` worded like AWS's model validation. */
export function validationError(
  member: string,
  constraint: string,
  received = 'the given value',
): AwsJsonError {
  const name = member.charAt(0).toLowerCase() + member.slice(1);
  return new AwsJsonError(
    'ValidationException',
    `1 validation error detected: Value ${received} at '${name}' failed to satisfy constraint: ${constraint}`,
  );
}
