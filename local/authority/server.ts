/**
 * The HTTPS server: Entra v2 routes for any tenant in the path, request counters and
 * the fault switch.
 *
 *   GET  /{tenant}/v2.0/.well-known/openid-configuration
 *   GET  /{tenant}/discovery/v2.0/keys
 *   GET  /{tenant}/discovery/instance          (instance discovery, e.g. /common/...)
 *   POST /{tenant}/oauth2/v2.0/token
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { ConfigurationError } from '../../shared/errors';
import { listen, readBody, sendJson } from '../http';
import { createDevCertificate } from '../tls';
import { DEFAULT_CALLER_CLIENT_ID, DEFAULT_TENANT_ID, DEFAULT_USER } from './constants';
import { Entra, EntraError } from './entra-errors';
import { registration } from './clients';
import type { ConditionalAccessRule } from './conditional-access';
import { checkLifetime, TokenEndpoint } from './token-endpoint';
import { TokenSigner, userAccessTokenClaims } from './tokens';
import type {
  AuthorityCounters,
  AuthorityFault,
  IssueAuthCodeOptions,
  LocalAuthority,
  LocalAuthorityOptions,
  LocalClient,
  MintUserTokenOptions,
  MsalAuthorityMetadata,
  RevocationFilter,
} from './types';

/** Token requests are small forms; anything larger is refused before it is buffered. */
const MAX_BODY_BYTES = 64 * 1024;
/** Tenant path segments: GUIDs, domain names, `common`, `organizations`. */
const TENANT_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9.-]*$/;

class Counters implements AuthorityCounters {
  /** Keyed by `<tenant path segment>\n<grant_type>`. */
  private readonly tokens = new Map<string, number>();
  private metadataCalls = 0;
  private jwksCalls = 0;

  token(grantType?: string, tenantId?: string): number {
    let total = 0;
    for (const [key, n] of this.tokens) {
      const [tenant, grant] = key.split('\n');
      if (grantType !== undefined && grant !== grantType) continue;
      if (tenantId !== undefined && tenant.toLowerCase() !== tenantId.toLowerCase()) continue;
      total += n;
    }
    return total;
  }
  metadata(): number {
    return this.metadataCalls;
  }
  jwks(): number {
    return this.jwksCalls;
  }
  reset(): void {
    this.tokens.clear();
    this.metadataCalls = 0;
    this.jwksCalls = 0;
  }
  countToken(tenantId: string, grantType: string): void {
    const key = `${tenantId}\n${grantType}`;
    this.tokens.set(key, (this.tokens.get(key) ?? 0) + 1);
  }
  countMetadata(): void {
    this.metadataCalls++;
  }
  countJwks(): void {
    this.jwksCalls++;
  }
}

class RunningAuthority implements LocalAuthority {
  readonly url: string;
  readonly host: string;
  readonly counters = new Counters();
  private readonly tokens: TokenEndpoint;
  private fault: { status: 429 | 500 | 503; remaining: number; retryAfterSeconds?: number } | undefined;
  private tokenLatencyMs = 0;

  constructor(
    private readonly server: Server,
    port: number,
    readonly tenantId: string,
    readonly ca: string,
    private readonly signer: TokenSigner,
    options: LocalAuthorityOptions,
  ) {
    this.host = `localhost:${port}`;
    this.url = `https://${this.host}`;
    this.tokens = new TokenEndpoint(
      signer,
      { issuer: (t) => this.issuer(t), tokenEndpoint: (t) => this.tokenEndpoint(t) },
      tenantId,
      options.accessTokenLifetimeSeconds ?? 3600,
      options.caeAccessTokenLifetimeSeconds,
    );
    for (const client of options.clients ?? []) this.tokens.register(client);
    this.tokens.conditionalAccess.set(options.conditionalAccess ?? []);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.route(req, res).catch((e: unknown) => {
        // route() answers every error itself; this only fires if writing the answer failed.
        res.destroy(e instanceof Error ? e : undefined);
      });
    });
  }

  authority(tenantId = this.tenantId): string {
    return `${this.url}/${tenantId}`;
  }
  issuer(tenantId = this.tenantId): string {
    return `${this.url}/${tenantId}/v2.0`;
  }
  jwksUri(tenantId = this.tenantId): string {
    return `${this.url}/${tenantId}/discovery/v2.0/keys`;
  }
  private tokenEndpoint(tenantId: string): string {
    return `${this.url}/${tenantId}/oauth2/v2.0/token`;
  }

  openidConfiguration(tenantId = this.tenantId): Record<string, unknown> {
    const base = this.authority(tenantId);
    // Entra's v2 document, minus endpoints that point at other services (userinfo on Graph, Kerberos, device code).
    return {
      token_endpoint: this.tokenEndpoint(tenantId),
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt'],
      jwks_uri: this.jwksUri(tenantId),
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: this.issuer(tenantId),
      request_uri_parameter_supported: false,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: [
        'sub',
        'iss',
        'aud',
        'exp',
        'iat',
        'nonce',
        'preferred_username',
        'name',
        'tid',
        'ver',
        'oid',
      ],
      tenant_region_scope: null,
      cloud_instance_name: 'localhost',
    };
  }

  private instanceDiscovery(tenantId: string): Record<string, unknown> {
    return {
      tenant_discovery_endpoint: `${this.issuer(tenantId)}/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: this.host, preferred_cache: this.host, aliases: [this.host] }],
    };
  }

  msalMetadata(tenantId = this.tenantId): MsalAuthorityMetadata {
    return {
      knownAuthorities: [this.host],
      authorityMetadata: JSON.stringify(this.openidConfiguration(tenantId)),
      cloudDiscoveryMetadata: JSON.stringify(this.instanceDiscovery(tenantId)),
    };
  }

  registerClient(client: LocalClient): void {
    this.tokens.register(client);
  }

  setAccessTokenLifetime(seconds: number): void {
    this.tokens.setAccessTokenLifetime(seconds);
  }

  setConditionalAccess(rules: readonly ConditionalAccessRule[]): void {
    this.tokens.conditionalAccess.set(rules);
  }

  async mintUserToken(options: MintUserTokenOptions): Promise<string> {
    if (!options.audience) throw new ConfigurationError('mintUserToken.audience', 'must not be empty');
    const tenantId = options.tenantId ?? this.tenantId;
    const preferredUsername = options.preferredUsername ?? DEFAULT_USER.preferredUsername;
    const claims = userAccessTokenClaims({
      issuer: options.issuer ?? this.issuer(tenantId),
      lifetimeSeconds: options.expiresInSeconds ?? 3600,
      notBeforeOffsetSeconds: options.notBeforeOffsetSeconds ?? 0,
      audience: options.audience,
      clientId: options.clientId ?? DEFAULT_CALLER_CLIENT_ID,
      clientAuth: '1',
      user: {
        oid: options.oid ?? DEFAULT_USER.oid,
        tenantId,
        preferredUsername,
        name:
          options.name ?? (options.preferredUsername === undefined ? DEFAULT_USER.name : preferredUsername),
      },
      scp: (options.scopes ?? ['access_as_user']).map((s) => s.slice(s.lastIndexOf('/') + 1)),
    });
    // A guest's token names the tenant the user comes from in `idp`, as Entra's does.
    if (options.homeTenantId !== undefined) claims.idp = `https://sts.windows.net/${options.homeTenantId}/`;
    if (options.acrs?.length) claims.acrs = [...options.acrs];
    if (options.amr?.length) claims.amr = [...options.amr];
    if (options.tid === null) delete claims.tid;
    else if (options.tid !== undefined) claims.tid = options.tid;
    return this.signer.sign(claims);
  }

  issueAuthCode(options: IssueAuthCodeOptions): string {
    return this.tokens.issueCode(options);
  }

  revokeRefreshTokens(filter?: RevocationFilter): number {
    return this.tokens.revoke(filter);
  }

  exportSigningKeys(): Record<string, unknown>[] {
    return this.signer.exportPrivateKeys();
  }

  rotateSigningKey(): Promise<string> {
    return this.signer.rotate();
  }

  setFault(fault: AuthorityFault | undefined): void {
    if (fault === undefined) {
      this.fault = undefined;
      return;
    }
    if (![429, 500, 503].includes(fault.status)) {
      throw new ConfigurationError('setFault.status', `must be 429, 500 or 503, got ${fault.status}`);
    }
    const remaining = fault.count ?? Infinity;
    if (!(remaining > 0))
      throw new ConfigurationError('setFault.count', `must be positive, got ${remaining}`);
    this.fault = {
      status: fault.status,
      remaining,
      ...(fault.retryAfterSeconds !== undefined ? { retryAfterSeconds: fault.retryAfterSeconds } : {}),
    };
  }

  setTokenLatency(ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0 && ms <= 60_000)) {
      throw new ConfigurationError('setTokenLatency', `must be 0..60000 ms, got ${ms}`);
    }
    this.tokenLatencyMs = ms;
  }

  stop(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.close((e) => (e ? reject(e) : resolve()));
      // MSAL and @azure/identity keep connections alive; close() alone would wait for them.
      this.server.closeAllConnections();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const correlationId = header(req, 'client-request-id');
    const path = new URL(req.url ?? '/', this.url).pathname;
    const [, tenantId = '', ...rest] = path.split('/');
    const endpoint = rest.join('/');
    if (!TENANT_SEGMENT.test(tenantId)) {
      sendJson(res, 404, { error: 'not_found', error_description: `No route for ${req.method} ${path}` });
      return;
    }
    if (req.method === 'GET' && endpoint === 'v2.0/.well-known/openid-configuration') {
      this.counters.countMetadata();
      sendJson(res, 200, this.openidConfiguration(tenantId));
    } else if (req.method === 'GET' && endpoint === 'discovery/instance') {
      this.counters.countMetadata();
      sendJson(res, 200, this.instanceDiscovery(tenantId));
    } else if (req.method === 'GET' && endpoint === 'discovery/v2.0/keys') {
      this.counters.countJwks();
      sendJson(res, 200, this.signer.jwks());
    } else if (req.method === 'POST' && endpoint === 'oauth2/v2.0/token') {
      await this.token(req, res, tenantId, correlationId);
    } else {
      sendJson(res, 404, { error: 'not_found', error_description: `No route for ${req.method} ${path}` });
    }
  }

  private async token(
    req: IncomingMessage,
    res: ServerResponse,
    tenantId: string,
    correlationId: string | undefined,
  ): Promise<void> {
    const headers: Record<string, string> = { 'cache-control': 'no-store', pragma: 'no-cache' };
    if (correlationId) headers['client-request-id'] = correlationId;
    try {
      const params = new URLSearchParams(
        (
          await readBody(req, MAX_BODY_BYTES, (size) => Entra.invalidParameter('body', `${size}+ bytes`))
        ).toString('utf8'),
      );
      this.counters.countToken(tenantId, params.get('grant_type') ?? '');
      if (this.tokenLatencyMs > 0) await new Promise((done) => setTimeout(done, this.tokenLatencyMs));
      const fault = this.fault;
      if (fault && fault.remaining > 0) {
        fault.remaining--;
        if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
        throw Entra.fault(fault.status);
      }
      sendJson(res, 200, await this.tokens.handle(tenantId, params), headers);
    } catch (e) {
      const error =
        e instanceof EntraError
          ? e
          : new EntraError(
              500,
              'server_error',
              50000,
              `Unexpected error in the local authority: ${String(e)}`,
            );
      sendJson(res, error.status, error.body(correlationId), headers);
    }
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Starts an Entra-compatible authority on https://localhost.
 * @example
 * const authority = await startLocalAuthority({ clients: [{ clientId, clientSecret }] });
 * const cca = new ConfidentialClientApplication({
 *   auth: { clientId, clientSecret, authority: authority.authority(), ...authority.msalMetadata() },
 *   system: { networkClient: new HttpsNetworkClient({ ca: authority.ca }) },
 * });
 */
export async function startLocalAuthority(options: LocalAuthorityOptions = {}): Promise<LocalAuthority> {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigurationError('LocalAuthorityOptions.port', `must be an integer 0..65535, got ${port}`);
  }
  const tenantId = options.tenantId ?? DEFAULT_TENANT_ID;
  if (!TENANT_SEGMENT.test(tenantId)) {
    throw new ConfigurationError(
      'LocalAuthorityOptions.tenantId',
      `'${tenantId}' cannot be a URL path segment`,
    );
  }
  // Validate everything before a port is opened.
  for (const client of options.clients ?? []) registration(client);
  checkLifetime(options.accessTokenLifetimeSeconds ?? 3600);
  if (options.caeAccessTokenLifetimeSeconds !== undefined)
    checkLifetime(options.caeAccessTokenLifetimeSeconds);
  const certificate = options.certificate ?? (await createDevCertificate());
  const signer = await TokenSigner.create(options.signingKeys);
  const server = createServer({ cert: certificate.cert, key: certificate.key });
  const boundPort = await listen(server, port);
  return new RunningAuthority(server, boundPort, tenantId, certificate.cert, signer, options);
}
