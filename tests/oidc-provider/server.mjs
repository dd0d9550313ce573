// A real OpenID provider (node-oidc-provider) on loopback for the federation tests.
//
// Environment:
//   PORT                 port to listen on (default 0: any free port)
//   CLIENT_ID            the test client's id
//   CLIENT_SECRET        its secret
//   REDIRECT_URIS        its redirect URIs, space-separated
//   CLIENT_AUTH_METHOD   client_secret_basic (default) or client_secret_post; the
//                        provider then advertises only that method
//
// Prints one line of JSON on stdout once listening: {"issuer": ..., "port": ...}.
//
// Sign-in pages: GET /interaction/{uid} shows a form (field `login`: an account id);
// POST /interaction/{uid}/login signs that account in and grants what was asked;
// POST /interaction/{uid}/abort answers `access_denied`.
//
// Test hooks (loopback callers only; JSON bodies):
//   POST /test/accounts  {"id", "claims": {...}}    adds an account
//   POST /test/tamper    {"claims": {...} | null}   overrides ID token claims, re-signed
//   POST /test/clock     {"offset_seconds": n}      shifts the provider's clock
//   POST /test/keys      {"publish": bool}          signs ID tokens with a new key from
//                                                   now on, published in the JWKS or not
//   POST /test/publish   {}                         publishes every key made so far
//   GET  /test/stats                                {"jwks": n, "discovery": n, "token": n}

import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const env = process.env;
const port = Number(env.PORT ?? 0);
const clientId = env.CLIENT_ID ?? 'introspectd';
const clientSecret = env.CLIENT_SECRET ?? 'introspectd-test-secret-0123456789';
const redirectUris = (env.REDIRECT_URIS ?? 'http://127.0.0.1:8080/login/callback/test')
  .split(' ')
  .filter(Boolean);
const authMethod = env.CLIENT_AUTH_METHOD ?? 'client_secret_basic';

const realNow = Date.now.bind(Date);
let clockOffsetMs = 0;
Date.now = () => realNow() + clockOffsetMs;

function rsaKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { kid, privateKey, jwk: { ...jwk, kid, alg: 'RS256', use: 'sig' } };
}

function publicJwk({ jwk }) {
  const { kty, n, e, kid, alg, use } = jwk;
  return { kty, n, e, kid, alg, use };
}

const phase = (what) => process.stderr.write(`[test provider] ${what}\n`);
phase('generating the signing key');
const initialKey = rsaKey('initial');
phase('signing key ready');
// Keys made by /test/keys: the last one signs ID tokens; `published` ones are in the JWKS.
const extraKeys = [];
let tamperClaims = null;
const accounts = new Map();
const stats = { jwks: 0, discovery: 0, token: 0 };

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: authMethod,
    },
  ],
  clientAuthMethods: [authMethod],
  jwks: { keys: [initialKey.jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  // Claims of the scopes asked for go into the ID token, as the big providers do.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  ttl: { AuthorizationCode: 60, IdToken: 3600, AccessToken: 3600, Interaction: 3600, Session: 3600, Grant: 3600 },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const account = accounts.get(id);
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...account };
      },
    };
  },
};

function base64url(data) {
  return Buffer.from(data).toString('base64url');
}

function signJwt(header, payload, privateKey) {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const signature = crypto.sign('sha256', Buffer.from(input), privateKey);
  return `${input}.${base64url(signature)}`;
}

function resign(idToken) {
  const [, payloadPart] = idToken.split('.');
  const payload = { ...JSON.parse(Buffer.from(payloadPart, 'base64url')), ...(tamperClaims ?? {}) };
  const key = extraKeys.at(-1)?.key ?? initialKey;
  return signJwt({ alg: 'RS256', typ: 'JWT', kid: key.kid }, payload, key.privateKey);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isLoopback(ip) {
  return ip === '127.0.0.1' || ip === '::1' || ip === '::ffff:127.0.0.1';
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

phase('listening');
// Listening first: the issuer names the port.
const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const actualPort = server.address().port;
const issuer = `http://127.0.0.1:${actualPort}`;
phase(`listening at ${issuer}`);
const provider = new Provider(issuer, configuration);
phase('provider ready');

provider.use(async (ctx, next) => {
  const path = ctx.path;
  if (path.startsWith('/test/')) {
    if (!isLoopback(ctx.req.socket.remoteAddress)) {
      ctx.status = 403;
      return;
    }
    if (ctx.method === 'GET' && path === '/test/stats') {
      ctx.body = stats;
      return;
    }
    const body = JSON.parse((await readBody(ctx.req)) || '{}');
    if (path === '/test/accounts') {
      accounts.set(body.id, body.claims ?? {});
    } else if (path === '/test/tamper') {
      tamperClaims = body.claims ?? null;
    } else if (path === '/test/clock') {
      clockOffsetMs = Number(body.offset_seconds ?? 0) * 1000;
    } else if (path === '/test/keys') {
      const key = rsaKey(`rotated-${extraKeys.length + 1}`);
      extraKeys.push({ key, published: Boolean(body.publish) });
    } else if (path === '/test/publish') {
      for (const extra of extraKeys) extra.published = true;
    } else {
      ctx.status = 404;
      return;
    }
    ctx.status = 204;
    return;
  }

  const interaction = path.match(/^\/interaction\/([^/]+)(\/login|\/abort)?$/);
  if (interaction) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const [, uid, action] = interaction;
    if (ctx.method === 'GET' && !action) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><html><head><title>Test provider sign-in</title></head><body>
<h1>Test provider</h1>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="login">Account</label>
<input id="login" name="login" autofocus>
<button type="submit" id="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
<button type="submit" id="abort">Cancel</button>
</form></body></html>`;
      return;
    }
    if (ctx.method === 'POST' && action === '/login') {
      const form = new URLSearchParams(await readBody(ctx.req));
      const accountId = form.get('login') ?? '';
      if (!accounts.has(accountId)) {
        ctx.status = 400;
        ctx.body = 'unknown account';
        return;
      }
      const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      const result = { login: { accountId }, consent: { grantId } };
      const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.status = 303;
      ctx.redirect(to);
      return;
    }
    if (ctx.method === 'POST' && action === '/abort') {
      const result = { error: 'access_denied', error_description: 'the user cancelled' };
      const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.status = 303;
      ctx.redirect(to);
      return;
    }
    ctx.status = 405;
    return;
  }

  if (path === '/jwks') stats.jwks += 1;
  if (path === '/.well-known/openid-configuration') stats.discovery += 1;
  if (path === '/token') stats.token += 1;
  await next();
  if (path === '/jwks' && ctx.status === 200 && ctx.body && Array.isArray(ctx.body.keys)) {
    const published = extraKeys.filter((extra) => extra.published).map((extra) => publicJwk(extra.key));
    ctx.body = { keys: [...ctx.body.keys, ...published] };
  }
  const signsOtherwise = tamperClaims !== null || extraKeys.length > 0;
  if (path === '/token' && signsOtherwise && ctx.body && typeof ctx.body.id_token === 'string') {
    ctx.body = { ...ctx.body, id_token: resign(ctx.body.id_token) };
  }
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer, port: actualPort })}\n`);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
