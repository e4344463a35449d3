// The peer of `cargo xtask bench --peer` (xtask/src/peer.rs): node-oidc-provider (the version
// xtask pins, installed from npm into the tools directory, never into the repository), set up
// as close to the service's /oauth/token refresh grant as it allows:
//   - one process, no cluster (xtask pins it to the server core with taskset);
//   - an RS256 key (2048-bit RSA, generated at start), the only signing key;
//   - one public client (token_endpoint_auth_method none, as the service's native
//     applications) allowed the refresh_token grant;
//   - rotateRefreshToken false, so that wrk can replay one refresh token;
//   - the in-memory store: its MemoryAdapter (see BenchAdapter for the one change);
//   - the refresh tokens (one per wrk connection, as the service's benchmark uses) are issued
//     directly at start (each a Grant with openid offline_access, then a RefreshToken model)
//     instead of driving an interaction: what wrk measures is the refresh grant only.
// Each refresh (grant_type=refresh_token, openid in the token's scope) answers an opaque
// access token (stored) and an id_token signed with RS256.
//
// Usage: node oidc-provider.mjs <port> [<tokens>]. The first line on stdout is
// {"client_id": …, "refresh_tokens": [… <tokens>, default 1], "issuer": …}; everything else goes
// to stderr.
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

const port = Number(process.argv[2] ?? 3100);
const count = Number(process.argv[3] ?? 1);
const issuer = `http://127.0.0.1:${port}`;
const clientId = 'bench';
const accountId = 'bench-user';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'bench-rs256' };

// The MemoryAdapter indexes every stored token by its grant, in one map per grant that each
// save walks and spreads into Math.max: replaying one refresh token grows that map by one
// access token per request (O(n) per request, then a stack overflow past ~100,000). A real
// deployment's adapter does not do that per request; access tokens are stored here without
// the grant index (everything else is the MemoryAdapter's, LRU included).
class BenchAdapter extends MemoryAdapter {
  async upsert(id, payload, expiresIn) {
    if (this.model === 'AccessToken') {
      const maxAge = typeof expiresIn === 'number' ? expiresIn * 1000 : undefined;
      this.storage.set(this.key(id), payload, { maxAge });
      return;
    }
    await super.upsert(id, payload, expiresIn);
  }
}

const provider = new Provider(issuer, {
  adapter: BenchAdapter,
  clients: [
    {
      client_id: clientId,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'offline_access'],
  rotateRefreshToken: false,
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  features: { devInteractions: { enabled: false } },
  ttl: { AccessToken: 3600, IdToken: 36000, RefreshToken: 30 * 24 * 3600, Grant: 30 * 24 * 3600 },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const client = await provider.Client.find(clientId);
const refreshTokens = [];
for (let i = 0; i < count; i += 1) {
  const grant = new provider.Grant({ accountId, clientId });
  grant.addOIDCScope('openid offline_access');
  const grantId = await grant.save();
  refreshTokens.push(await new provider.RefreshToken({
    accountId,
    client,
    grantId,
    gty: 'authorization_code',
    scope: 'openid offline_access',
    authTime: Math.floor(Date.now() / 1000),
    expiresWithSession: false,
  }).save());
}

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ client_id: clientId, refresh_tokens: refreshTokens, issuer })}\n`);
});
