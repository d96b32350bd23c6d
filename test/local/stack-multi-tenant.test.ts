/**
 * `npm start -- --multi-tenant` (issue 22): the local stack's web API on `organizations`
 * with two allowed tenants, each caller's exchange in its own tenant, the daemon per tenant.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GrantType } from '../../local/authority';
import { freePortRun } from '../../local/net';
import { LOCAL_STACK_PORT_COUNT, LOCAL_TENANTS, startLocalStack, type LocalStack } from '../../local/stack';
import { OUTSIDE_TENANT as OUTSIDE } from '../support/tenants';

describe('local stack, multi-tenant (aws)', () => {
  let stack: LocalStack;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'local-stack-mt-'));
    stack = await startLocalStack({
      cloud: 'aws',
      dataDir,
      portBase: await freePortRun(LOCAL_STACK_PORT_COUNT),
      daemonIntervalMs: 0,
      multiTenant: true,
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const call = (token: string) =>
    fetch(`${stack.url}/api/downstream`, { headers: { authorization: `Bearer ${token}` } });

  it('serves both allowed tenants, each exchange in the caller’s tenant, and refuses another', async () => {
    expect(stack.multiTenant).toBe(true);
    stack.authority.counters.reset();
    for (const tenant of LOCAL_TENANTS) {
      const response = await call(await stack.mintUserToken('mt-user', tenant));
      expect(response.status).toBe(200);
      expect(stack.authority.counters.token(GrantType.OnBehalfOf, tenant)).toBe(1);
    }
    expect(stack.authority.counters.token(GrantType.OnBehalfOf, 'organizations')).toBe(0);

    const refused = await call(await stack.mintUserToken('mt-user', OUTSIDE));
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: { code: 'tenant_not_allowed' } });
    expect(stack.authority.counters.token(GrantType.OnBehalfOf)).toBe(2);
  });

  it('mints a token of a tenant on /_local/token?tenant=, and refuses a tenant that is not a GUID', async () => {
    const token = await (await fetch(`${stack.url}/_local/token?tenant=${LOCAL_TENANTS[1]}`)).text();
    expect((await call(token)).status).toBe(200);
    expect((await fetch(`${stack.url}/_local/token?tenant=common`)).status).toBe(400);
  });

  it('runs the daemon once per tenant', async () => {
    stack.authority.counters.reset();
    const summary = await stack.runDaemon();
    expect(summary.ok).toBe(true);
    expect(summary.tenants?.map((t) => t.tenantId)).toEqual([...LOCAL_TENANTS]);
    for (const tenant of LOCAL_TENANTS) {
      expect(stack.authority.counters.token(GrantType.ClientCredentials, tenant)).toBe(1);
    }
  });

  it('refuses the Azure flavour multi-tenant, before opening a port', async () => {
    await expect(startLocalStack({ cloud: 'azure', multiTenant: true, dataDir })).rejects.toThrow(
      /multi-tenant local stack runs the AWS flavour only/,
    );
  });
});
