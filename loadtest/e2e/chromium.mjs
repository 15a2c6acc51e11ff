// The headless Debian Chromium every browser script drives through playwright-core
// (CHROMIUM_PATH, else /usr/bin/chromium), with the flags that keep it quiet and offline.
import { chromium } from 'playwright-core';

export function launchChromium(userDataDir, options = {}) {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    ...options,
  });
}
