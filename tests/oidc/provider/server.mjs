// A real OpenID provider (panva's oidc-provider) for the tests: tests/oidc.py starts it.
// Development only: devInteractions' login page accepts any login with any password.
//
// Configured by the environment:
//   OIDC_PORT              port on 127.0.0.1 (required)
//   OIDC_ISSUER            issuer URL (default http://127.0.0.1:$OIDC_PORT)
//   OIDC_JWKS_FILE         JSON {"keys": [private JWKs with kid]} (required); a rotation is a
//                          restart with another file
//   OIDC_ACCESS_TOKEN_ALG  RS256 | ES256 | EdDSA: the alg that signs access tokens (RS256)
//   OIDC_AUDIENCE          the API's audience, an absolute URI (urn:coursereg:api): access
//                          tokens are JWTs for it, whatever resource the client asks for
//   OIDC_ACCESS_TOKEN_TTL  access token lifetime in seconds (600)
//   OIDC_CLIENT_ID         the SPA's public client (coursereg-app): no secret, PKCE required
//   OIDC_REDIRECT_URIS     its redirect URIs, comma-separated
//   OIDC_POST_LOGOUT_REDIRECT_URIS  comma-separated (default: none)
//   OIDC_CORS_ORIGINS      browser origins allowed to call the token endpoint etc.,
//                          comma-separated (default: the redirect URIs' origins)
//   OIDC_EMAIL_DOMAIN      students' e-mail domain (students.example.edu)
//
// Accounts, by login name (the password is ignored):
//   s-<student number>  a student: student_number, email <number>@$OIDC_EMAIL_DOMAIN,
//                       groups ["students"]
//   <name>@<domain>     a student known by e-mail only: email, groups ["students"]
//   staff-<anything>    groups ["registrar-staff"]
//   advisor-<anything>  groups ["advisors"]
//   anything else       no groups
// These claims go into the access token (extraTokenClaims) and the ID token / userinfo.
//
// GET /_test/stats answers {"jwks_fetches": n}: how often /jwks was fetched (the tests of the
// API's unknown-kid refetch rate limit count them).
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const env = process.env;
const list = (value) => (value || '').split(',').map((s) => s.trim()).filter(Boolean);

const port = Number(env.OIDC_PORT);
if (!port) throw new Error('OIDC_PORT is required');
const issuer = env.OIDC_ISSUER || `http://127.0.0.1:${port}`;
if (!env.OIDC_JWKS_FILE) throw new Error('OIDC_JWKS_FILE is required');
const jwks = JSON.parse(readFileSync(env.OIDC_JWKS_FILE, 'utf8'));
const alg = env.OIDC_ACCESS_TOKEN_ALG || 'RS256';
const audience = env.OIDC_AUDIENCE || 'urn:coursereg:api';
const accessTokenTTL = Number(env.OIDC_ACCESS_TOKEN_TTL || 600);
const clientId = env.OIDC_CLIENT_ID || 'coursereg-app';
const redirectUris = list(env.OIDC_REDIRECT_URIS);
if (!redirectUris.length) throw new Error('OIDC_REDIRECT_URIS is required');
const corsOrigins = new Set(
  env.OIDC_CORS_ORIGINS ? list(env.OIDC_CORS_ORIGINS) : redirectUris.map((u) => new URL(u).origin),
);
const emailDomain = env.OIDC_EMAIL_DOMAIN || 'students.example.edu';
const scope = 'openid profile email offline_access';

function accountClaims(login) {
  let match = /^s-(.+)$/.exec(login);
  if (match) {
    return {
      student_number: match[1],
      email: `${match[1]}@${emailDomain}`,
      email_verified: true,
      name: `Student ${match[1]}`,
      groups: ['students'],
    };
  }
  if (login.includes('@')) {
    return { email: login, email_verified: true, name: login, groups: ['students'] };
  }
  match = /^(staff|advisor)-/.exec(login);
  if (match) {
    return {
      name: login,
      groups: [match[1] === 'staff' ? 'registrar-staff' : 'advisors'],
    };
  }
  return { name: login, groups: [] };
}

const configuration = {
  jwks,
  clients: [
    {
      client_id: clientId,
      token_endpoint_auth_method: 'none',
      application_type: 'web',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: redirectUris,
      post_logout_redirect_uris: list(env.OIDC_POST_LOGOUT_REDIRECT_URIS),
      scope,
      // The test issuer is plain http on 127.0.0.1; a browser app's redirect may be too.
    },
  ],
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'groups', 'student_number'],
    email: ['email', 'email_verified'],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...accountClaims(id) };
      },
    };
  },
  async extraTokenClaims(ctx, token) {
    if (!token.accountId) return undefined;
    const { groups, student_number: studentNumber, email } = accountClaims(token.accountId);
    const extra = { groups };
    if (studentNumber !== undefined) extra.student_number = studentNumber;
    if (email !== undefined) extra.email = email;
    return extra;
  },
  // A first-party app: no consent screen; the grant covers what it asks for, and the API.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(scope);
    grant.addOIDCClaims(['groups', 'student_number', 'email', 'name']);
    grant.addResourceScope(audience, scope);
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Every access token is for the API, a JWT signed with `alg`.
      defaultResource: async () => audience,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (resourceIndicator !== audience) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope,
          audience,
          accessTokenTTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        };
      },
    },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  clientBasedCORS(ctx, origin) {
    return corsOrigins.has(origin);
  },
  enabledJWA: {
    idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA', 'Ed25519'],
  },
  ttl: {
    AccessToken: accessTokenTTL,
    IdToken: accessTokenTTL,
  },
  cookies: { keys: ['coursereg-test-provider-cookie-key'] },
  // The ID token signed with the same alg as access tokens, so a key file with one key works.
  clientDefaults: { id_token_signed_response_alg: alg },
};

const provider = new Provider(issuer, configuration);
let jwksFetches = 0;
provider.use(async (ctx, next) => {
  if (ctx.path === '/_test/stats') {
    ctx.body = { jwks_fetches: jwksFetches };
    return;
  }
  if (ctx.path === '/jwks') jwksFetches += 1;
  await next();
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer} (access tokens ${alg}, audience ${audience})`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Started with a pipe as stdin (tests/oidc.py): its end means the test process is gone, so
// no provider outlives a killed test run.
if (env.OIDC_EXIT_WITH_STDIN === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
