// A real OpenID Connect provider (panva/oidc-provider) on 127.0.0.1 for trackgate's tests.
// Started by tests/support/oidc_fixture.py; everything is in memory and gone when it stops.
//
// Environment:
//   OP_PORT       port to listen on (127.0.0.1 only)
//   RP_REDIRECTS  comma-separated redirect URIs of the `trackgate` client (one per gateway replica)
//   RP_LOGOUTS    comma-separated post-logout redirect URIs of the `trackgate` client
//   OP_JWKS       optional private JWKS (JSON) to sign with instead of the package's fixed dev key
//
// Clients:
//   trackgate / trackgate-secret   authorization code (+ refresh token), the browser sign-on
//   ci-job / ci-secret             client credentials; with resource=https://trackgate.test the
//                                  access token is an RS256 JWT (aud https://trackgate.test), the
//                                  "external issuer" bearer token of a CI job
// Users: the login form accepts any login and password; the login becomes `sub`, and the email
// is the login itself when it contains "@" (else <login>@example.test). Everyone is in group
// "ml-team"; a login starting with "admin" is in "ml-admins" too.
import http from 'node:http';
import Provider from 'oidc-provider';

const PORT = Number(process.env.OP_PORT || 5410);
const ISSUER = `http://127.0.0.1:${PORT}`;
const API = 'https://trackgate.test';
const list = (name, fallback) => (process.env[name] || fallback).split(',').filter(Boolean);

const provider = new Provider(ISSUER, {
  clients: [
    {
      client_id: 'trackgate',
      client_secret: 'trackgate-secret',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: list('RP_REDIRECTS', 'http://127.0.0.1:5411/oauth2/callback'),
      post_logout_redirect_uris: list('RP_LOGOUTS', 'http://127.0.0.1:5411/'),
    },
    {
      client_id: 'ci-job',
      client_secret: 'ci-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
  ],
  scopes: ['openid', 'email', 'groups', 'profile', 'offline_access'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'], profile: ['name'] },
  // Put email and groups in the ID token itself (as Google and Keycloak do); the spec-strict
  // default would leave them to the userinfo endpoint.
  conformIdTokenClaims: false,
  pkce: { required: () => false }, // S256 accepted (trackgate always sends it), not forced
  cookies: { keys: ['test-cookie-key'] },
  // A refresh token for every code exchange (no offline_access/consent dance), so the gateway's
  // session refresh can be exercised.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  ...(process.env.OP_JWKS && { jwks: JSON.parse(process.env.OP_JWKS) }),
  features: {
    devInteractions: { enabled: true }, // the login form: any login/password
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== API) throw new Error('unknown resource');
        return { audience: API, scope: 'api:read api:write', accessTokenFormat: 'jwt', accessTokenTTL: 600 };
      },
    },
  },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      claims: async () => ({
        sub,
        email: sub.includes('@') ? sub : `${sub}@example.test`,
        email_verified: true,
        name: sub.split('@')[0],
        groups: sub.startsWith('admin') ? ['ml-team', 'ml-admins'] : ['ml-team'],
      }),
    };
  },
  async loadExistingGrant(ctx) {
    // No consent screen: every scope the client asks for is granted.
    const id = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (id) return ctx.oidc.provider.Grant.find(id);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email groups profile offline_access');
    await grant.save();
    return grant;
  },
});

const server = http.createServer(provider.callback());
server.listen(PORT, '127.0.0.1', () => console.log(`OP ready ${ISSUER}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
