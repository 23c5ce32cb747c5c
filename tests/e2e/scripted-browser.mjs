// Plays the user's browser for Connect X in the end-to-end test: the app runs `$BROWSER <url>`.
// Loads the sandbox's consent page, clicks "Authorise app", and delivers the redirect to the
// app's loopback callback, like a person approving in a real browser.
const url = process.argv[2];
const page = await fetch(url);
const html = await page.text();
const match = html.match(/id="approve" href="([^"]+)"/);
if (!match) {
  console.error(`scripted browser: no consent page at ${url}`);
  process.exit(1);
}
const decided = await fetch(new URL(match[1], url), { redirect: 'manual' });
const callback = decided.headers.get('location');
if (!callback) {
  console.error(`scripted browser: no redirect after approving (${decided.status})`);
  process.exit(1);
}
await fetch(callback);
