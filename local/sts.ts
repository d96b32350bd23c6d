/**
 * An STS-compatible `GetWebIdentityToken` (IAM outbound identity federation) for the local
 * stack and tests, over STS's query protocol: a form-encoded `POST /` with
 * `Action=GetWebIdentityToken`, answered in XML, errors as `<ErrorResponse>`. The caller is
 * one configured principal (SigV4 is not checked): the token's `sub` is its ARN, as for a
 * Lambda function's role. The server is also the tokens' OpenID issuer (discovery, JWKS),
 * as `https://<id>.tokens.sts.global.api.aws` is for a real account.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen, readBody, stopServer } from './http';
import { LocalOidcIssuer } from './oidc-issuer';

/** Options of {@link startLocalSts}. */
export interface LocalStsOptions {
  /** TCP port on localhost. @default 0 (any free port) */
  readonly port?: number;
  /** The calling principal, the tokens' `sub`. @default LOCAL_ROLE_ARN */
  readonly principalArn?: string;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** Whether the account has enabled outbound identity federation. @default true */
  readonly federationEnabled?: boolean;
}

/** A fault the endpoint answers with instead of a token. */
export interface StsFault {
  /** `unavailable`: 503 ServiceUnavailable; `throttled`: 400 Throttling; `slow`: answers after `delayMs`. */
  readonly kind: 'unavailable' | 'throttled' | 'slow';
  /** For `slow`. @default 10_000 */
  readonly delayMs?: number;
  /** How many requests it affects. @default Infinity */
  readonly count?: number;
}

/** A running local STS. */
export interface LocalSts {
  /** `http://localhost:PORT`: `AWS_ENDPOINT_URL_STS`. */
  readonly endpoint: string;
  /** The tokens' `iss`, to register in Entra as the federated credential's issuer. */
  readonly issuer: string;
  /** The tokens' `sub`: the calling principal's ARN. */
  readonly subject: string;
  readonly region: string;
  /** GetWebIdentityToken requests received (failed ones too). */
  calls(): number;
  /** Signs any claims as this issuer (tests: expired or foreign tokens); `iss` is always this issuer. */
  mintToken(claims: Record<string, unknown>): Promise<string>;
  /** Turns outbound identity federation of the "account" on or off. */
  setFederationEnabled(enabled: boolean): void;
  /** Makes requests fail or stall, or recover with `undefined`. */
  setFault(fault: StsFault | undefined): void;
  stop(): Promise<void>;
}

/** The default calling principal: a Lambda function's role. */
export const LOCAL_ROLE_ARN = 'arn:aws:iam::000000000000:role/msal-cloud-cache-local-function';

const XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/';

/** Starts the server. */
export async function startLocalSts(options: LocalStsOptions = {}): Promise<LocalSts> {
  const subject = options.principalArn ?? LOCAL_ROLE_ARN;
  const region = options.region ?? 'us-east-1';
  let federationEnabled = options.federationEnabled ?? true;
  let fault: (StsFault & { remaining: number }) | undefined;
  let calls = 0;
  // Known once the port is: the issuer URL names it.
  const ref: { issuer?: LocalOidcIssuer } = {};
  const account = /^arn:aws[a-z-]*:[a-z]+::(\d{12}):/.exec(subject)?.[1] ?? '000000000000';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (await ref.issuer!.serve(req, res, path)) return;
    if (req.method !== 'POST' || path !== '/') {
      return error(res, 404, 'Sender', 'UnknownOperationException', 'Unknown operation');
    }
    const params = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
    const action = params.get('Action');
    if (action !== 'GetWebIdentityToken') {
      return error(res, 400, 'Sender', 'InvalidAction', `Could not find operation ${action ?? ''}`);
    }
    calls++;
    if (fault && fault.remaining > 0) {
      fault.remaining--;
      if (fault.kind === 'unavailable') {
        return error(res, 503, 'Receiver', 'ServiceUnavailable', 'Service is unavailable.');
      }
      if (fault.kind === 'throttled') return error(res, 400, 'Sender', 'Throttling', 'Rate exceeded');
      await new Promise((resolve) => setTimeout(resolve, fault?.delayMs ?? 10_000).unref());
    }
    if (!federationEnabled) {
      return error(
        res,
        403,
        'Sender',
        'OutboundWebIdentityFederationDisabledException',
        'Outbound web identity federation is disabled for this account. Enable it with iam:EnableOutboundWebIdentityFederation.',
      );
    }
    const audiences = [...params.entries()]
      .filter(([name]) => /^Audience\.member\.\d+$/.test(name))
      .map(([, value]) => value);
    if (audiences.length < 1 || audiences.length > 10) {
      return error(res, 400, 'Sender', 'ValidationError', 'Audience must have between 1 and 10 members.');
    }
    const algorithm = params.get('SigningAlgorithm');
    if (algorithm !== 'RS256') {
      // ES384 is valid at STS; this emulator signs with RS256 only, which Entra needs.
      return error(
        res,
        400,
        'Sender',
        'ValidationError',
        `SigningAlgorithm '${algorithm ?? ''}' is not RS256.`,
      );
    }
    const duration = Number(params.get('DurationSeconds') ?? '300');
    if (!Number.isInteger(duration) || duration < 60 || duration > 3600) {
      return error(res, 400, 'Sender', 'ValidationError', 'DurationSeconds must be between 60 and 3600.');
    }
    const now = Math.floor(Date.now() / 1000);
    const token = await ref.issuer!.sign({
      sub: subject,
      aud: audiences.length === 1 ? audiences[0] : audiences,
      iat: now,
      nbf: now,
      exp: now + duration,
      jti: randomUUID(),
      'https://sts.amazonaws.com/': { aws_account: account, source_region: region, principal_id: subject },
    });
    const body =
      `<GetWebIdentityTokenResponse xmlns="${XMLNS}"><GetWebIdentityTokenResult>` +
      `<WebIdentityToken>${token}</WebIdentityToken>` +
      `<Expiration>${new Date((now + duration) * 1000).toISOString()}</Expiration>` +
      `</GetWebIdentityTokenResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>` +
      `</GetWebIdentityTokenResponse>`;
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) error(res, 500, 'Receiver', 'InternalFailure', 'internal error');
      else res.destroy();
    });
  });
  const port = await listen(server, options.port ?? 0);
  const endpoint = `http://localhost:${port}`;
  const issuer = (ref.issuer = new LocalOidcIssuer(endpoint));
  return {
    endpoint,
    issuer: issuer.issuer,
    subject,
    region,
    calls: () => calls,
    mintToken: (claims) => issuer.sign(claims),
    setFederationEnabled(enabled) {
      federationEnabled = enabled;
    },
    setFault(next) {
      fault = next ? { ...next, remaining: next.count ?? Number.POSITIVE_INFINITY } : undefined;
    },
    stop: () => stopServer(server),
  };
}

function error(res: ServerResponse, status: number, type: string, code: string, message: string): void {
  const body =
    `<ErrorResponse xmlns="${XMLNS}"><Error><Type>${type}</Type><Code>${code}</Code>` +
    `<Message>${escapeXml(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
  res.writeHead(status, { 'content-type': 'text/xml' });
  res.end(body);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
