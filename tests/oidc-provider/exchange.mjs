// Token exchange (RFC 8693) by openid-client, a client library nobody here wrote, against
// a running introspectd on loopback: discovery from its RFC 8414 metadata, then the
// token-exchange grant with client_secret_basic.
//
// Environment:
//   ISSUER          the server's issuer (an http URL on loopback)
//   CLIENT_ID       the exchanging client's id
//   CLIENT_SECRET   its secret
//   SUBJECT_TOKEN   the access token to exchange
//   RESOURCE        the target of the new token
//
// Prints one line of JSON on stdout: the token endpoint's answer, or {"error": ...}.

import * as client from 'openid-client';

const env = process.env;
try {
  const config = await client.discovery(
    new URL(env.ISSUER),
    env.CLIENT_ID,
    undefined,
    client.ClientSecretBasic(env.CLIENT_SECRET),
    { algorithm: 'oauth2', execute: [client.allowInsecureRequests] },
  );
  const supported = config.serverMetadata().grant_types_supported ?? [];
  if (!supported.includes('urn:ietf:params:oauth:grant-type:token-exchange')) {
    throw new Error('the metadata does not list token exchange');
  }
  const tokens = await client.genericGrantRequest(
    config,
    'urn:ietf:params:oauth:grant-type:token-exchange',
    {
      subject_token: env.SUBJECT_TOKEN,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      resource: env.RESOURCE,
    },
  );
  process.stdout.write(`${JSON.stringify(tokens)}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: err.error ?? err.message })}\n`);
  process.exitCode = 1;
}
