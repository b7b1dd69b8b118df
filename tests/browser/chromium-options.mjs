// How every browser test here launches Debian's chromium (never a downloaded browser): shared by
// tests/browser and tests/seed-client. No imports, so either folder's playwright-core can use it.
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// Headless, and without the background services whose connections this machine's closed network
// refuses.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
