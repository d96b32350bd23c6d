import * as fs from 'node:fs';
import * as path from 'node:path';
import { FunctionVariables, loadFunctionConfig } from '../../functions/core/config';
import { CUSTOMER_TENANT_A } from '../support/tenants';

/*
 * No Bicep compiler or ARM validator can be installed on this machine (the Bicep CLI ships
 * on NuGet only, and `az deployment validate` needs a subscription), so the template is
 * ARM JSON and this file is its validator: expressions are well formed and refer to
 * declared names, dependencies and scopes point at resources the template declares, and
 * the resources and role assignments are the ones the design asks for.
 */

interface Resource {
  type: string;
  apiVersion: string;
  name: string;
  scope?: string;
  kind?: string;
  location?: string;
  identity?: { type: string };
  properties?: Record<string, unknown>;
  dependsOn?: string[];
}
interface ArmTemplate {
  $schema: string;
  contentVersion: string;
  parameters: Record<string, { type: string; defaultValue?: unknown }>;
  variables: Record<string, unknown>;
  resources: Resource[];
  outputs: Record<string, { type: string; value: string }>;
}

const file = path.join(__dirname, '..', '..', 'infra', 'azure', 'azuredeploy.json');
const template = JSON.parse(fs.readFileSync(file, 'utf8')) as ArmTemplate;

/** The expression inside `[...]`, or undefined for a literal (`[[` escapes a literal bracket). */
function expressionOf(value: string): string | undefined {
  return value.startsWith('[') && !value.startsWith('[[') && value.endsWith(']')
    ? value.slice(1, -1)
    : undefined;
}

/** Splits `a, f(b, 'c,d'), e` at its top-level commas. */
function splitArgs(args: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < args.length; i++) {
    const ch = args[i];
    if (ch === "'")
      quoted = !quoted; // '' inside a string toggles twice: still quoted
    else if (!quoted && (ch === '(' || ch === '[')) depth++;
    else if (!quoted && (ch === ')' || ch === ']')) depth--;
    else if (!quoted && depth === 0 && ch === ',') {
      out.push(args.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = args.slice(start).trim();
  if (last !== '') out.push(last);
  return out;
}

/** `fn(a, b).x.y` → { fn, args: [a, b], rest: '.x.y' }. */
function parseCall(expr: string): { fn: string; args: string[]; rest: string } {
  const open = expr.indexOf('(');
  if (open <= 0) throw new Error(`not a call: ${expr}`);
  let depth = 0;
  let quoted = false;
  for (let i = open; i < expr.length; i++) {
    const ch = expr[i];
    if (ch === "'") quoted = !quoted;
    else if (!quoted && ch === '(') depth++;
    else if (!quoted && ch === ')' && --depth === 0) {
      return { fn: expr.slice(0, open), args: splitArgs(expr.slice(open + 1, i)), rest: expr.slice(i + 1) };
    }
  }
  throw new Error(`unbalanced call: ${expr}`);
}

/** A single call with balanced quotes and parentheses, followed only by property or index access. */
function wellFormed(expr: string): boolean {
  try {
    const { fn, args, rest } = parseCall(expr);
    return (
      /^[A-Za-z][A-Za-z0-9.]*$/.test(fn) &&
      /^(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*$/.test(rest) &&
      args.every((a) => /^'.*'$/s.test(a) || /^-?\d+$/.test(a) || /^(true|false)$/.test(a) || wellFormed(a))
    );
  } catch {
    return false;
  }
}

const literal = (s: string): string => `'${s}'`;

/** `variables('x')` → the variable's own expression (or quoted literal), one level deep. */
function deref(expr: string): string {
  const m = /^variables\('([^']+)'\)$/.exec(expr);
  if (!m) return expr;
  const value = template.variables[m[1]];
  if (typeof value !== 'string') throw new Error(`variable ${m[1]} is not a string`);
  return expressionOf(value) ?? literal(value);
}

/** A resource address: its type and one expression per name segment. */
interface Address {
  type: string;
  segments: string[];
}

/** The address a `resourceId(...)` expression (possibly behind a variable) points at. */
function addressOfResourceId(expr: string): Address {
  const call = parseCall(deref(expr));
  expect(call.fn).toBe('resourceId');
  const [type, ...segments] = call.args;
  return { type: type.slice(1, -1), segments };
}

/** The address of a declared resource, from its type and name. */
function addressOf(resource: Resource): Address {
  const expr = expressionOf(resource.name);
  if (expr === undefined) return { type: resource.type, segments: resource.name.split('/').map(literal) };
  if (!expr.startsWith('format(')) return { type: resource.type, segments: [expr] };
  const { args } = parseCall(expr);
  const [fmt, ...values] = args;
  const segments = fmt
    .slice(1, -1)
    .split('/')
    .map((part) => {
      const index = /^\{(\d+)\}$/.exec(part);
      return index ? values[Number(index[1])] : literal(part);
    });
  return { type: resource.type, segments };
}

/** The address an extension resource's `scope` (`Provider/type/{0}/child/{1}`) points at. */
function addressOfScope(scope: string): Address {
  const { args } = parseCall(expressionOf(scope) ?? '');
  const [fmt, ...values] = args;
  const [namespace, ...pairs] = fmt.slice(1, -1).split('/');
  const types: string[] = [];
  const segments: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    types.push(pairs[i]);
    const index = /^\{(\d+)\}$/.exec(pairs[i + 1]);
    segments.push(index ? values[Number(index[1])] : literal(pairs[i + 1]));
  }
  return { type: [namespace, ...types].join('/'), segments };
}

/** Every string in the template, with where it is. */
function strings(value: unknown, at = '$'): { at: string; value: string }[] {
  if (typeof value === 'string') return [{ at, value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => strings(v, `${at}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => strings(v, `${at}.${k}`));
  }
  return [];
}

const resourcesOf = (type: string): Resource[] => template.resources.filter((r) => r.type === type);
function one(type: string): Resource {
  const found = resourcesOf(type);
  expect(found).toHaveLength(1);
  return found[0];
}
const site = (): Resource => one('Microsoft.Web/sites');
const principalOfSite = `reference(variables('functionAppId'), '2024-04-01', 'full').identity.principalId`;

describe('infra/azure/azuredeploy.json', () => {
  describe('as an ARM template', () => {
    it('is a resource-group deployment template', () => {
      expect(template.$schema).toBe(
        'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#',
      );
      expect(template.contentVersion).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      for (const r of template.resources) expect(r.apiVersion).toMatch(/^\d{4}-\d{2}-\d{2}(-preview)?$/);
    });

    it('has only well-formed expressions that use declared parameters and variables, and uses them all', () => {
      const used = { parameters: new Set<string>(), variables: new Set<string>() };
      for (const { at, value } of strings(template)) {
        const expr = expressionOf(value);
        if (expr === undefined) continue;
        expect({ at, wellFormed: wellFormed(expr) }).toEqual({ at, wellFormed: true });
        for (const [, kind, name] of expr.matchAll(/\b(parameters|variables)\('([^']+)'\)/g)) {
          const declared = kind === 'parameters' ? template.parameters : template.variables;
          expect({ at, [kind]: name, declared: name in declared }).toEqual({
            at,
            [kind]: name,
            declared: true,
          });
          used[kind as 'parameters' | 'variables'].add(name);
        }
      }
      expect([...used.parameters].sort()).toEqual(Object.keys(template.parameters).sort());
      expect([...used.variables].sort()).toEqual(Object.keys(template.variables).sort());
    });

    it('names every child resource with one segment per type level', () => {
      for (const r of template.resources.filter((x) => !x.scope)) {
        expect({ type: r.type, segments: addressOf(r).segments.length }).toEqual({
          type: r.type,
          segments: r.type.split('/').length - 1,
        });
      }
    });

    it('depends only on resources it declares', () => {
      const declared = template.resources.filter((r) => !r.scope).map(addressOf);
      for (const r of template.resources) {
        for (const dep of r.dependsOn ?? []) {
          expect({
            from: r.type,
            dep: declared.some((d) => equal(d, addressOfResourceId(expressionOf(dep)!))),
          }).toEqual({ from: r.type, dep: true });
        }
      }
    });
  });

  describe('Cosmos DB', () => {
    it('is an Entra-only account with a database and a /pk container whose items expire by their own ttl', () => {
      expect(one('Microsoft.DocumentDB/databaseAccounts').properties).toMatchObject({
        disableLocalAuth: true,
        minimalTlsVersion: 'Tls12',
      });
      one('Microsoft.DocumentDB/databaseAccounts/sqlDatabases');
      const container = one('Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers');
      expect(container.properties).toMatchObject({
        resource: { partitionKey: { paths: ['/pk'], kind: 'Hash' }, defaultTtl: -1 },
      });
    });
  });

  describe('Key Vault', () => {
    it('uses Azure RBAC, keeps deleted keys, and holds an RSA wrapping key with a rotation policy', () => {
      expect(one('Microsoft.KeyVault/vaults').properties).toMatchObject({
        enableRbacAuthorization: true,
        enableSoftDelete: true,
        enablePurgeProtection: true,
      });
      // Two keys since issue 11: the RSA wrapping key (keyName) and the EC signing key (signingKeyName).
      const keyNamed = (parameter: string): Resource => {
        const found = resourcesOf('Microsoft.KeyVault/vaults/keys').filter((r) =>
          r.name.includes(`parameters('${parameter}')`),
        );
        expect(found).toHaveLength(1);
        return found[0];
      };
      const key = keyNamed('keyName').properties as {
        kty: string;
        keySize: number;
        keyOps: string[];
        rotationPolicy: {
          attributes: { expiryTime: string };
          lifetimeActions: { trigger: Record<string, string>; action: { type: string } }[];
        };
      };
      expect(key.kty).toBe('RSA');
      expect(key.keySize).toBeGreaterThanOrEqual(3072);
      expect(key.keyOps.sort()).toEqual(['unwrapKey', 'wrapKey']);
      const signing = keyNamed('signingKeyName').properties as typeof key & { curveName: string };
      expect(signing.kty).toBe('EC');
      expect(signing.curveName).toBe('P-256');
      expect(signing.keyOps.sort()).toEqual(['sign', 'verify']);
      expect(signing.rotationPolicy.attributes.expiryTime).toBe("[parameters('keyExpiresAfter')]");
      expect(key.rotationPolicy.attributes.expiryTime).toBe("[parameters('keyExpiresAfter')]");
      expect(key.rotationPolicy.lifetimeActions).toContainEqual({
        trigger: { timeAfterCreate: "[parameters('keyRotateAfter')]" },
        action: { type: 'rotate' },
      });
      expect(template.parameters.keyRotateAfter.defaultValue).toBe('P1Y');
    });
  });

  describe('Function App', () => {
    it('runs Node on Flex Consumption with a system-assigned identity and HTTPS only', () => {
      const app = site();
      expect(app.kind).toContain('functionapp');
      // The system identity holds the data-plane roles; the user-assigned one is the federated credential.
      expect(app.identity).toEqual({
        type: 'SystemAssigned, UserAssigned',
        userAssignedIdentities: { "[variables('identityId')]": {} },
      });
      expect(app.properties).toMatchObject({
        httpsOnly: true,
        functionAppConfig: {
          runtime: { name: 'node' },
          deployment: { storage: { authentication: { type: 'SystemAssignedIdentity' } } },
        },
      });
      expect(one('Microsoft.Web/serverfarms')).toMatchObject({
        sku: { tier: 'FlexConsumption', name: 'FC1' },
      });
    });

    it('defaults to a Node.js major that CI tests (.ci/run runs the suite on 22 and 24) and allows no other', () => {
      const ci = fs.readFileSync(path.join(__dirname, '../../.ci/run'), 'utf8');
      const tested = [...ci.matchAll(/node_bin (\d+)\)/g)].map((m) => m[1]).sort();
      const parameter = template.parameters.nodeVersion as unknown as {
        defaultValue: string;
        allowedValues: string[];
      };

      expect(tested).toEqual(['22', '24']);
      expect(tested).toContain(parameter.defaultValue);
      expect([...parameter.allowedValues].sort()).toEqual(tested);
    });

    /** The value of `[if(variables('federated'), 'a', b)]` for one credential, or the value itself. */
    const forCredential = (value: string, federated: boolean): string => {
      const m = /^\[if\(variables\('federated'\), '([^']*)', (.+)\)\]$/.exec(value);
      if (!m) return value;
      if (federated) return m[1];
      return /^'([^']*)'$/.exec(m[2])?.[1] ?? `[${m[2]}]`;
    };
    const settingsFor = (credential: 'secret' | 'federated') =>
      (
        site().properties as { siteConfig: { appSettings: { name: string; value: string }[] } }
      ).siteConfig.appSettings.map(({ name, value }) => ({
        name: forCredential(name, credential === 'federated'),
        value: forCredential(value, credential === 'federated'),
      }));

    it('has app settings that shared/config.ts knows and accepts, pointing at Cosmos DB and Key Vault', () => {
      expect(template.parameters.credential.defaultValue).toBe('secret');
      const settings = settingsFor('secret');
      const platform = new Set(['AzureWebJobsStorage__accountName', 'APPLICATIONINSIGHTS_CONNECTION_STRING']);
      const known = new Set<string>(FunctionVariables);
      for (const { name } of settings)
        expect({ name, known: platform.has(name) || known.has(name) }).toEqual({ name, known: true });

      // Deploy-time values: parameter defaults, and what the platform resolves the rest to.
      const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
      const resolved: Record<string, string> = {
        MSAL_AUTHORITY: `https://login.microsoftonline.com/${tenant}`,
        MSAL_CLIENT_SECRET: 'resolved-from-key-vault',
        MSAL_MANAGED_IDENTITY_CLIENT_ID: '3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a',
        TOKEN_CACHE_COSMOS_ENDPOINT: 'https://msalcache-cosmos-abc.documents.azure.com:443/',
        TOKEN_CACHE_KEYVAULT_KEY_ID: 'https://msalcachekvabc.vault.azure.net/keys/token-cache-wrap',
        TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID: 'https://msalcachekvabc.vault.azure.net/keys/token-cache-sign',
      };
      const parameterValues: Record<string, string> = {
        clientId: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
        apiRequiredScopes: 'access_as_user',
      };
      const env: Record<string, string> = {};
      for (const { name, value } of settings) {
        if (platform.has(name)) continue;
        const param = /^\[parameters\('([^']+)'\)\]$/.exec(value)?.[1];
        const v = param
          ? (parameterValues[param] ?? template.parameters[param].defaultValue)
          : resolved[name];
        if (typeof v !== 'string') throw new Error(`no deploy-time value for ${name} (${value})`);
        env[name] = v;
      }
      expect(settings.find((s) => s.name === 'MSAL_CLIENT_SECRET')?.value).toMatch(
        /^\[format\('@Microsoft\.KeyVault\(/,
      );

      const config = loadFunctionConfig(env);
      expect(config.store).toMatchObject({ kind: 'cosmos', databaseId: 'msal', containerId: 'token-cache' });
      expect(config.store).not.toHaveProperty('key');
      expect(config.keyRing).toEqual({
        kind: 'azure-keyvault',
        keyId: resolved.TOKEN_CACHE_KEYVAULT_KEY_ID,
        signingKeyId: resolved.TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID,
      });
      expect(config.azureCredential).toBe('default');
      expect(config.msal.credential.kind).toBe('secret');
      expect(config.api.requiredScopes).toEqual(['access_as_user']);
    });

    it('requires apiRequiredScopes at deploy time: no default, at least one character, passed as API_REQUIRED_SCOPES', () => {
      const parameter = template.parameters.apiRequiredScopes as {
        defaultValue?: unknown;
        minLength?: number;
      };
      const settings = (
        site().properties as { siteConfig: { appSettings: { name: string; value: string }[] } }
      ).siteConfig.appSettings;

      expect(parameter).not.toHaveProperty('defaultValue');
      expect(parameter.minLength).toBe(1);
      expect(settings.find((s) => s.name === 'API_REQUIRED_SCOPES')?.value).toBe(
        "[parameters('apiRequiredScopes')]",
      );
    });

    it('passes apiAllowedTenants and daemonTenants (default empty) as API_ALLOWED_TENANTS and DAEMON_TENANTS', () => {
      const settings = (
        site().properties as { siteConfig: { appSettings: { name: string; value: string }[] } }
      ).siteConfig.appSettings;
      for (const [name, parameter] of [
        ['API_ALLOWED_TENANTS', 'apiAllowedTenants'],
        ['DAEMON_TENANTS', 'daemonTenants'],
      ] as const) {
        expect(settings.find((s) => s.name === name)?.value).toBe(`[parameters('${parameter}')]`);
        expect(template.parameters[parameter]).toMatchObject({ type: 'string', defaultValue: '' });
      }
      // tenantId "organizations" with an allow-list: the handlers validate multi-tenant.
      const allowed = CUSTOMER_TENANT_A;
      const config = loadFunctionConfig({
        MSAL_CLIENT_ID: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
        MSAL_AUTHORITY: 'https://login.microsoftonline.com/organizations',
        MSAL_CLIENT_SECRET: 'resolved-from-key-vault',
        TOKEN_CACHE_COSMOS_ENDPOINT: 'https://msalcache-cosmos-abc.documents.azure.com:443/',
        TOKEN_CACHE_COSMOS_DATABASE: 'msal',
        TOKEN_CACHE_COSMOS_CONTAINER: 'token-cache',
        TOKEN_CACHE_KEYVAULT_KEY_ID: 'https://msalcachekvabc.vault.azure.net/keys/token-cache-wrap',
        TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID: 'https://msalcachekvabc.vault.azure.net/keys/token-cache-sign',
        DOWNSTREAM_URL: 'https://graph.microsoft.com/v1.0/me',
        DOWNSTREAM_SCOPES: 'https://graph.microsoft.com/User.Read',
        API_REQUIRED_SCOPES: 'access_as_user',
        API_ALLOWED_TENANTS: allowed,
        DAEMON_TENANTS: allowed,
      });
      expect(config.api.multiTenant).toEqual({
        authorityHost: 'https://login.microsoftonline.com',
        allowedTenants: [allowed],
      });
      expect(config.downstream.tenants).toEqual([allowed]);
    });

    it("with credential 'federated': no secret, the user-assigned identity as the client assertion", () => {
      const settings = settingsFor('federated');
      const known = new Set<string>(FunctionVariables);
      expect(settings.map((s) => s.name)).not.toContain('MSAL_CLIENT_SECRET');
      const env: Record<string, string> = {
        MSAL_AUTHORITY: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47',
        MSAL_MANAGED_IDENTITY_CLIENT_ID: '3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a',
        TOKEN_CACHE_COSMOS_ENDPOINT: 'https://msalcache-cosmos-abc.documents.azure.com:443/',
        TOKEN_CACHE_KEYVAULT_KEY_ID: 'https://msalcachekvabc.vault.azure.net/keys/token-cache-wrap',
        TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID: 'https://msalcachekvabc.vault.azure.net/keys/token-cache-sign',
      };
      for (const { name, value } of settings) {
        if (!known.has(name) || name in env) continue;
        const param = /^\[parameters\('([^']+)'\)\]$/.exec(value)?.[1];
        env[name] = param
          ? String(
              param === 'clientId'
                ? '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'
                : template.parameters[param].defaultValue,
            )
          : value;
      }
      expect(settings.find((s) => s.name === 'MSAL_MANAGED_IDENTITY_CLIENT_ID')?.value).toBe(
        "[reference(variables('identityId'), '2023-01-31').clientId]",
      );

      const config = loadFunctionConfig(env);
      expect(config.msal.credential).toEqual({
        kind: 'azure-managed-identity',
        clientId: '3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a',
      });
    });

    it('has a user-assigned identity, and the client secret and its role only with the secret credential', () => {
      expect(one('Microsoft.ManagedIdentity/userAssignedIdentities').name).toBe(
        "[variables('identityName')]",
      );
      expect(template.parameters.clientSecret.defaultValue).toBe('');
      expect(one('Microsoft.KeyVault/vaults/secrets')).toMatchObject({
        condition: "[not(variables('federated'))]",
      });
      const secretRole = resourcesOf('Microsoft.Authorization/roleAssignments').find((r) =>
        (r.scope ?? '').includes('/secrets/'),
      );
      expect(secretRole).toMatchObject({ condition: "[not(variables('federated'))]" });
      expect(template.variables.federated).toBe("[equals(parameters('credential'), 'federated')]");
    });

    it('outputs the issuer, subject and audience of the federated credential to register', () => {
      expect(template.outputs.federatedIssuer.value).toBe(
        "[format('{0}{1}/v2.0', environment().authentication.loginEndpoint, parameters('tenantId'))]",
      );
      expect(template.outputs.federatedSubject.value).toBe(
        "[reference(variables('identityId'), '2023-01-31').principalId]",
      );
      expect(template.outputs.federatedAudience.value).toBe('api://AzureADTokenExchange');
      expect(template.outputs.managedIdentityClientId.value).toBe(
        "[reference(variables('identityId'), '2023-01-31').clientId]",
      );
    });
  });

  describe('role assignments', () => {
    const roleAssignments = (): Resource[] => resourcesOf('Microsoft.Authorization/roleAssignments');
    const roleOf = (r: Resource): string => {
      const { fn, args } = parseCall(
        expressionOf((r.properties as { roleDefinitionId: string }).roleDefinitionId)!,
      );
      expect(fn).toBe('subscriptionResourceId');
      expect(args[0]).toBe("'Microsoft.Authorization/roleDefinitions'");
      return deref(args[1]);
    };
    const addressOfDeclared = (type: string): Address => addressOf(one(type));

    it('gives the Function App Cosmos DB Built-in Data Contributor on the container only', () => {
      const assignment = one('Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments');
      const props = assignment.properties as { roleDefinitionId: string; principalId: string; scope: string };
      const role = addressOfResourceId(expressionOf(props.roleDefinitionId)!);
      expect(role.type).toBe('Microsoft.DocumentDB/databaseAccounts/sqlRoleDefinitions');
      expect(deref(role.segments[1])).toBe("'00000000-0000-0000-0000-000000000002'");
      expect(expressionOf(props.principalId)).toBe(principalOfSite);

      const { args } = parseCall(expressionOf(props.scope)!);
      expect(args[0]).toBe("'{0}/dbs/{1}/colls/{2}'");
      const container = addressOfDeclared('Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers');
      expect(
        equal(addressOfResourceId(args[1]), {
          type: 'Microsoft.DocumentDB/databaseAccounts',
          segments: [container.segments[0]],
        }),
      ).toBe(true);
      expect(args.slice(2)).toEqual(container.segments.slice(1));
    });

    // Issue 11, point 5: no longer Key Vault Crypto User (12338af0…: keys/update, backup,
    // encrypt/decrypt, sign/verify on any key it is assigned to).
    const ENCRYPTION_USER = "'e147488a-f6f5-4113-8e2d-b22465e65bf6'"; // Key Vault Crypto Service Encryption User
    const keyNamed = (parameter: string): Address =>
      addressOf(
        resourcesOf('Microsoft.KeyVault/vaults/keys').find((r) =>
          r.name.includes(`parameters('${parameter}')`),
        )!,
      );

    it('gives the Function App Key Vault Crypto Service Encryption User on the wrapping key only', () => {
      const keyAssignments = roleAssignments().filter((r) => roleOf(r) === ENCRYPTION_USER);
      expect(keyAssignments).toHaveLength(1);
      expect(equal(addressOfScope(keyAssignments[0].scope!), keyNamed('keyName'))).toBe(true);
      expect(roleAssignments().map(roleOf)).not.toContain("'12338af0-0e69-4776-bea7-57ae8d297424'");
    });

    it('gives it a custom role with exactly keys/read and keys/sign/action, on the signing key only', () => {
      const definition = one('Microsoft.Authorization/roleDefinitions');
      const props = definition.properties as {
        type: string;
        permissions: {
          actions: string[];
          notActions: string[];
          dataActions: string[];
          notDataActions: string[];
        }[];
        assignableScopes: string[];
      };
      expect(props.type).toBe('CustomRole');
      expect(props.permissions).toEqual([
        {
          actions: [],
          notActions: [],
          dataActions: ['Microsoft.KeyVault/vaults/keys/read', 'Microsoft.KeyVault/vaults/keys/sign/action'],
          notDataActions: [],
        },
      ]);
      expect(props.assignableScopes).toEqual(['[resourceGroup().id]']);
      const signer = roleAssignments().filter((r) => roleOf(r) === deref(expressionOf(definition.name)!));
      expect(signer).toHaveLength(1);
      expect(equal(addressOfScope(signer[0].scope!), keyNamed('signingKeyName'))).toBe(true);
    });

    it('gives it Key Vault Secrets User on the client secret only, and Blob Data Owner on its own storage', () => {
      const byRole = new Map(roleAssignments().map((r) => [roleOf(r), addressOfScope(r.scope!)]));
      expect([...byRole.keys()].sort()).toEqual(
        [
          ENCRYPTION_USER,
          deref(expressionOf(one('Microsoft.Authorization/roleDefinitions').name)!), // the key signer (custom)
          "'4633458b-17de-408a-b874-0445c86b69e6'", // Key Vault Secrets User
          "'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'", // Storage Blob Data Owner
        ].sort(),
      );
      expect(
        equal(
          byRole.get("'4633458b-17de-408a-b874-0445c86b69e6'")!,
          addressOfDeclared('Microsoft.KeyVault/vaults/secrets'),
        ),
      ).toBe(true);
      expect(
        equal(
          byRole.get("'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'")!,
          addressOfDeclared('Microsoft.Storage/storageAccounts'),
        ),
      ).toBe(true);
    });

    it('assigns every role to the Function App identity, never at vault, account or resource-group scope', () => {
      for (const r of roleAssignments()) {
        expect(r.scope).toBeDefined();
        expect(expressionOf((r.properties as { principalId: string }).principalId)).toBe(principalOfSite);
        expect((r.properties as { principalType: string }).principalType).toBe('ServicePrincipal');
        expect(addressOfScope(r.scope!).type).not.toMatch(
          /^Microsoft\.(KeyVault\/vaults|DocumentDB\/databaseAccounts)$/,
        );
      }
    });
  });
});

function equal(a: Address, b: Address): boolean {
  return (
    a.type === b.type &&
    a.segments.length === b.segments.length &&
    a.segments.every((s, i) => deref(s) === deref(b.segments[i]))
  );
}
