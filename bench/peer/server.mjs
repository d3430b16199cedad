// panva/oidc-provider configured like the broker's bench setup: one Node process, Redis
// storage, two confidential clients (client_secret_basic, PKCE S256 required, RS256 or ES256
// ID tokens), and a login without UI: the interaction route logs the user in at once and the
// consent is a Grant created on the fly (loadExistingGrant), as for a first-party client.
//
//   PORT=... REDIS_URL=redis://127.0.0.1:6379/1 node server.mjs
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

import RedisAdapter, { connect } from './redis_adapter.mjs';

const port = Number(process.env.PORT || 3000);
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = process.env.REDIRECT_URI || 'https://rp.example/cb';
const secret = process.env.CLIENT_SECRET || 's'.repeat(32);
const account = process.env.ACCOUNT_ID || 'u-anna';

function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: alg.toLowerCase(), alg, use: 'sig' };
}

const jwks = {
  keys: [
    signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
    signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};

const client = (clientId, alg) => ({
  client_id: clientId,
  client_secret: secret,
  redirect_uris: [redirectUri],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: alg,
});

const configuration = {
  adapter: RedisAdapter,
  clients: [client('bench-rs', 'RS256'), client('bench-es', 'ES256')],
  jwks,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // The broker issues a refresh token with every code redemption; so does the peer here.
  issueRefreshToken: async (ctx, oidcClient) => oidcClient.grantTypeAllowed('refresh_token'),
  // The broker rotates the refresh token at every use; so does the peer here.
  rotateRefreshToken: true,
  // The broker's lifetimes; codes live as long as its bench codes (pre-minted codes must
  // stay valid until they are redeemed).
  ttl: {
    AuthorizationCode: 600,
    Interaction: 600,
    Session: 12 * 3600,
    Grant: 8 * 3600,
    AccessToken: 600,
    RefreshToken: 8 * 3600,
    IdToken: 300,
  },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  // Consent is auto-granted: a Grant for the requested scope, made when none exists yet.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
    await grant.save();
    return grant;
  },
};

connect(process.env.REDIS_URL || 'redis://127.0.0.1:6379/1');
const provider = new Provider(issuer, configuration);
const callback = provider.callback();

// The interaction-less login: whoever arrives is logged in as `login_hint` (or the default).
async function interaction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const result = { login: { accountId: details.params.login_hint || account } };
    if (details.prompt.name === 'consent') {
      const grant = new provider.Grant({ clientId: details.params.client_id, accountId: details.session.accountId });
      grant.addOIDCScope(details.params.scope);
      result.consent = { grantId: await grant.save() };
    }
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  } catch (err) {
    res.statusCode = 500;
    res.end(String(err));
  }
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
    interaction(req, res);
  } else {
    callback(req, res);
  }
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${issuer} ready`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
