// A real OpenID provider for development and the tests: panva's oidc-provider (OpenID Certified), with the
// demo's agencies as its accounts. Not for production: the government's identity provider takes its place.
//
// Settings (environment):
//   OIDC_PORT       port on 127.0.0.1 (the issuer is http://127.0.0.1:<port>)
//   OIDC_ACCOUNTS   JSON file: { "accounts": { "<login>": { "agency_id": "...", "roles": [...] } },
//                                "clients": [ { "client_id", "client_secret", "redirect_uris": [...],
//                                               "agency_id"?, "roles"? } ] }
// Access tokens are JWTs signed with an Ed25519 key made at start (published at /jwks), for the audience
// `placement-exchange`, carrying `agency_id` and `roles`: what the services verify.
import fs from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT || 8090);
const issuer = `http://127.0.0.1:${port}`;
const read = () => JSON.parse(fs.readFileSync(process.env.OIDC_ACCOUNTS, 'utf8'));
const config = read();
// The accounts are read again at every sign-in, so people can be added while the provider runs (the demo
// and the tests learn the agencies' ids only once the directory is loaded). The clients are fixed at start.
const accounts = () => read().accounts || {};
const clientGrants = Object.fromEntries(
  (config.clients || []).filter((c) => c.agency_id).map((c) => [c.client_id, c]),
);

const { privateKey } = generateKeyPairSync('ed25519');
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: `oidc-${Date.now()}`, alg: 'EdDSA', use: 'sig' };

const RESOURCE = 'urn:placement-exchange';

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clients: (config.clients || []).map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris || [],
    post_logout_redirect_uris: c.post_logout_redirect_uris || [],
    grant_types: c.redirect_uris?.length
      ? ['authorization_code', 'refresh_token']
      : ['client_credentials'],
    response_types: c.redirect_uris?.length ? ['code'] : [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'EdDSA',
  })),
  scopes: ['openid', 'offline_access', 'placement'],
  claims: { openid: ['sub'], placement: ['agency_id', 'roles'] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new Error(`unknown resource ${resourceIndicator}`);
        return {
          scope: 'placement offline_access',
          audience: 'placement-exchange',
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'EdDSA' } },
        };
      },
    },
  },
  async findAccount(ctx, id) {
    const account = accounts()[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, agency_id: account.agency_id, roles: account.roles }) };
  },
  async extraTokenClaims(ctx, token) {
    const who = token.accountId ? accounts()[token.accountId] : clientGrants[token.clientId];
    return who ? { agency_id: who.agency_id, roles: who.roles } : {};
  },
  ttl: { AccessToken: 600, ClientCredentials: 600 },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening at ${issuer}`);
});
