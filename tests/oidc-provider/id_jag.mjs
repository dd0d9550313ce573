// Enterprise-managed authorization by openid-client, a client library nobody here wrote,
// against a running introspectd on loopback: discovery from its RFC 8414 metadata, then
// the JWT bearer grant (RFC 7523) with an identity assertion (ID-JAG) and
// client_secret_basic.
//
// Environment:
//   ISSUER          the server's issuer (an http URL on loopback)
//   CLIENT_ID       the MCP client's id
//   CLIENT_SECRET   its secret
//   ASSERTION       the ID-JAG the organisation's provider issued for the client
//
// Prints one line of JSON on stdout: the token endpoint's answer, or {"error": ...}.

import * as client from 'openid-client';

const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
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
  if (!supported.includes(GRANT_TYPE)) {
    throw new Error('the metadata does not list the JWT bearer grant');
  }
  const tokens = await client.genericGrantRequest(config, GRANT_TYPE, {
    assertion: env.ASSERTION,
  });
  process.stdout.write(`${JSON.stringify(tokens)}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: err.error ?? err.message })}\n`);
  process.exitCode = 1;
}
