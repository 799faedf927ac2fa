// A real OAuth 2.0 authorization server (oidc-provider, OpenID-certified) on loopback for
// the token-realm tests: client-credentials tokens (opaque), RFC 7662 introspection with
// Keycloak-style claims (username, realm_access.roles, resource_access), RFC 7009
// revocation and expiry. One client per test identity, so every claim a token carries
// comes from the provider's own machinery plus the `extraTokenClaims` mapping below.
//
// Usage: node server.mjs [config.json] [--port N]
// Prints one JSON line on stdout once it listens:
//   {"issuer", "token_endpoint", "introspection_endpoint", "revocation_endpoint", "port"}
// Everything else goes to stderr (console.info is redirected: oidc-provider prints
// NOTICE lines through it, which would corrupt the ready line).
import http from 'node:http';
import fs from 'node:fs';

console.info = console.error;
const { default: Provider } = await import('oidc-provider');

const DEFAULT_CONFIG = {
  // The resource server that introspects (the gridactor token realm). It may introspect
  // and revoke any token whose audience is its own resource (see allowedPolicy).
  resource_server: { client_id: 'infinispan-server', client_secret: 'infinispan-secret', resource: 'urn:infinispan:server' },
  clients: [
    {
      client_id: 'admin-client', client_secret: 'admin-secret', ttl: 300,
      claims: {
        sub: 'admin', username: 'admin', preferred_username: 'Administrator',
        realm_access: { roles: ['admin'] },
        resource_access: { 'infinispan-server': { roles: ['deployer'] }, account: { roles: ['manage-account'] } },
        groups: ['ops'],
      },
    },
    {
      client_id: 'reader-client', client_secret: 'reader-secret', ttl: 300,
      claims: { sub: 'reader', username: 'reader', preferred_username: 'reader', realm_access: { roles: ['observer'] } },
    },
    {
      client_id: 'short-client', client_secret: 'short-secret', ttl: 3,
      claims: { sub: 'shorty', username: 'shorty', realm_access: { roles: ['observer'] } },
    },
    // No identity claims at all: the realm must refuse it (missing principal claim).
    { client_id: 'nameless-client', client_secret: 'nameless-secret', ttl: 300, claims: {} },
    // Tokens for another resource server: the AS tells infinispan-server they are not active.
    {
      client_id: 'other-client', client_secret: 'other-secret', ttl: 300, resource: 'urn:other:server',
      claims: { sub: 'other', username: 'other', realm_access: { roles: ['admin'] } },
    },
  ],
};

const args = process.argv.slice(2);
let port = 0;
let config = DEFAULT_CONFIG;
for (let i = 0; i < args.length; i += 1) {
  if (args[i] === '--port') { port = Number(args[i + 1]); i += 1; } else {
    config = { ...DEFAULT_CONFIG, ...JSON.parse(fs.readFileSync(args[i], 'utf8')) };
  }
}
const rs = config.resource_server;
const byId = new Map(config.clients.map((c) => [c.client_id, c]));
const resources = new Set([rs.resource, ...config.clients.map((c) => c.resource).filter(Boolean)]);

// An unbounded Map with expiry. The built-in development adapter is an LRU that forgets
// untouched tokens after ~1000 newer artifacts, which would make them introspect inactive.
const stores = new Map();
class MapAdapter {
  constructor(name) {
    if (!stores.has(name)) stores.set(name, new Map());
    this.store = stores.get(name);
  }
  async upsert(id, payload, expiresIn) {
    this.store.set(id, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
  }
  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) { this.store.delete(id); return undefined; }
    return entry.payload;
  }
  async findByUid(uid) {
    for (const [id, entry] of this.store) if (entry.payload.uid === uid) return this.find(id);
    return undefined;
  }
  async findByUserCode() { return undefined; }
  async consume(id) { const e = this.store.get(id); if (e) e.payload.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { this.store.delete(id); }
  async revokeByGrantId(grantId) {
    for (const [id, entry] of this.store) if (entry.payload.grantId === grantId) this.store.delete(id);
  }
}

const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const ttlFor = (ctx, token, client) => byId.get(client?.clientId ?? token?.clientId)?.ttl ?? 300;
const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients: [
    {
      client_id: rs.client_id, client_secret: rs.client_secret, grant_types: [], response_types: [],
      redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic',
    },
    ...config.clients.map((c) => ({
      client_id: c.client_id, client_secret: c.client_secret, grant_types: ['client_credentials'],
      response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic',
    })),
  ],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // RFC 7662 §4: the AS decides which protected resource may learn about a token. The
      // resource server only sees tokens issued for its own resource; others are inactive.
      allowedPolicy: async (ctx, client, token) => client.clientAuthMethod !== 'none'
        && (client.clientId !== rs.client_id || token.aud === undefined || [].concat(token.aud).includes(rs.resource)),
    },
    revocation: { enabled: true, allowedPolicy: async (ctx, client) => client.clientAuthMethod !== 'none' },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client) => byId.get(client.clientId)?.resource ?? rs.resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator, client) => {
        if (!resources.has(indicator)) throw new Error(`unknown resource ${indicator}`);
        return {
          scope: 'read write', audience: indicator, accessTokenFormat: 'opaque',
          accessTokenTTL: ttlFor(ctx, undefined, client),
        };
      },
    },
  },
  ttl: {
    AccessToken: ttlFor,
    ClientCredentials: ttlFor,
    Grant: 86400,
  },
  // Stored as token.extra; /token/introspection spreads it at the top level.
  extraTokenClaims: async (ctx, token) => ({ ...(byId.get(token.clientId)?.claims ?? {}) }),
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('grant.error', (ctx, err) => console.error('grant.error', err));
server.on('request', provider.callback());

process.stdout.write(`${JSON.stringify({
  issuer,
  port: server.address().port,
  token_endpoint: `${issuer}/token`,
  introspection_endpoint: `${issuer}/token/introspection`,
  revocation_endpoint: `${issuer}/token/revocation`,
})}\n`);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); process.exit(0); });
