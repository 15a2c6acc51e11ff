// npm test: finds the server binaries (WS_SINGLE_BIN, WS_MULTI_BIN, LOADTEST_BIN, as
// `make test` sets them) or builds them from this repository into a temporary directory,
// then runs every *.test.mjs here with Node's test runner, one file at a time (the
// integration files start servers; the machine may be small).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const env = { ...process.env };
let built = null;
for (const [v, mod] of [['WS_SINGLE_BIN', 'ws-single'], ['WS_MULTI_BIN', 'ws-multi'], ['LOADTEST_BIN', 'loadtest']]) {
  if (env[v]) continue;
  built ??= mkdtempSync(join(tmpdir(), 'ws_poc-js-bin-'));
  const out = join(built, mod);
  console.log(`building ${mod} (${v} is unset) into ${out}`);
  const r = spawnSync('go', ['build', '-o', out, '.'], {
    cwd: join(root, mod), stdio: 'inherit', env: { ...process.env, GOWORK: 'off', CGO_ENABLED: '0' }, timeout: 600000,
  });
  if (r.status !== 0) {
    console.error(`go build ${mod} failed`);
    process.exit(1);
  }
  env[v] = out;
}
const files = (process.argv.length > 2 ? process.argv.slice(2) : readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => join(here, f)));
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=120000', ...files], { stdio: 'inherit', env, timeout: 900000 });
if (built) rmSync(built, { recursive: true, force: true });
process.exit(r.status ?? 1);
