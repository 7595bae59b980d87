// A real OpenID provider for development and the tests: panva's oidc-provider (OpenID Certified), with the
// demo's agencies as its accounts. Not for production: the government's identity provider takes its place.
//
// Settings (environment):
//   OIDC_PORT       port on 127.0.0.1 (the issuer is http://127.0.0.1:<port>)
//   OIDC_ACCOUNTS   JSON file: { "accounts": { "<login>": { "agency_id": "...", "roles": [...] } },
//                                "clients": [ { "client_id", "client_secret"?, "redirect_uris": [...],
//                                               "post_logout_redirect_uris"?, "grant_types"?,
//                                               "agency_id"?, "roles"? } ] }
//   A client without redirect URIs or grant types is a machine (client credentials, acting as its
//   `agency_id` with its `roles`); one without a secret is public (placement-cli's sign-in for people:
//   `"grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]`, no secret).
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

// RP-initiated logout: the web app sends a person signing out to the end-session endpoint with the ID
// token it was given. With that hint (validated by the provider before this runs) the person already
// chose to sign out in the app, so the provider's session ends without a second question: a "stay signed
// in" answer on a shared office PC would hand the next person the account. Without a hint anyone could
// link here, so the person confirms. No external fonts or styles: the tests run on a closed network.
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
async function logoutSource(ctx, form) {
  const confirm = '<input type="hidden" name="logout" value="yes"/>'
    + '<button id="op-sign-out" type="submit">Sign out</button></form>';
  const page = form.replace('</form>', confirm);
  const proceed = ctx.oidc.entities.IdTokenHint
    ? '<script>document.getElementById("op.logoutForm").submit()</script>'
    : '';
  ctx.type = 'html';
  ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign out</title></head><body>
<h1>Sign out of ${escape(ctx.host)}?</h1>${page}${proceed}</body></html>`;
}

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clients: (config.clients || []).map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris || [],
    post_logout_redirect_uris: c.post_logout_redirect_uris || [],
    grant_types: c.grant_types || (c.redirect_uris?.length
      ? ['authorization_code', 'refresh_token']
      : ['client_credentials']),
    response_types: c.redirect_uris?.length ? ['code'] : [],
    // A program on a person's machine cannot keep a secret (RFC 8252): it signs in by the device flow.
    token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
    id_token_signed_response_alg: 'EdDSA',
  })),
  scopes: ['openid', 'offline_access', 'placement'],
  claims: { openid: ['sub'], placement: ['agency_id', 'roles'] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true, logoutSource },
    clientCredentials: { enabled: true },
    // RFC 8628, for placement-cli's `sign-in`: the person confirms the code at /device in a browser.
    deviceFlow: { enabled: true },
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
