// An OAuth 2.0 authorisation server we did not write (npm `oauth2-mock-server`), for the Rust
// PKCE tests: listens on an ephemeral loopback port, prints `port=<n>` once ready, and stops on
// SIGTERM / SIGINT or when stdin closes (the test process exiting).
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
await server.start(0, '127.0.0.1');
process.stdout.write(`port=${server.address().port}\n`);

const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
