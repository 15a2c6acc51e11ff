// `npm pack` builds the package; installed alone in an empty directory, its types check a
// consumer under `tsc --noEmit --strict` (TypeScript pinned by package-lock.json), a type
// error in a consumer is caught, and Node imports it.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(pkgDir, 'node_modules', 'typescript', 'bin', 'tsc');
let tmp;
let consumer;
let files;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ws_poc-js-pack-'));
  const out = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: pkgDir, encoding: 'utf8', timeout: 60000 }));
  files = out[0].files.map((f) => f.path).sort();
  consumer = join(tmp, 'consumer');
  const nm = join(consumer, 'node_modules', '@ws-poc');
  mkdirSync(nm, { recursive: true });
  execFileSync('tar', ['-xzf', join(tmp, out[0].filename), '-C', nm], { timeout: 30000 });
  renameSync(join(nm, 'package'), join(nm, 'client'));
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], types: [] },
    files: ['consumer.ts'],
  }));
});
after(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

function typecheck() {
  return spawnSync(process.execPath, [tsc, '-p', join(consumer, 'tsconfig.json')], { cwd: consumer, encoding: 'utf8', timeout: 60000 });
}

test('the package holds the module, its types, the README and nothing else', () => {
  assert.deepEqual(files, ['README.md', 'package.json', 'src/wsclient.d.ts', 'src/wsclient.js']);
});

test('a consumer type-checks against the packed types', () => {
  copyFileSync(join(pkgDir, 'test', 'consumer.ts'), join(consumer, 'consumer.ts'));
  const r = typecheck();
  assert.equal(r.status, 0, `tsc:\n${r.stdout}${r.stderr}`);
});

test('a consumer that misuses the API does not type-check', () => {
  writeFileSync(join(consumer, 'consumer.ts'), [
    "import { Client } from '@ws-poc/client';",
    "const c = new Client({ url: 'ws://x/ws' });",
    "void c.subscribe(['tickers:*'], { conflate: { ms: 7 } });",
    "c.on('message', (m) => m.offset.toUpperCase());",
  ].join('\n'));
  const r = typecheck();
  assert.notEqual(r.status, 0, 'tsc accepted a wrong conflate interval and a number used as a string');
  assert.match(r.stdout, /consumer\.ts\(3,/);
  assert.match(r.stdout, /consumer\.ts\(4,/);
});

test('Node imports the installed package', () => {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e',
    "import * as m from '@ws-poc/client'; console.log(Object.keys(m).sort().join(','))"], { cwd: consumer, encoding: 'utf8', timeout: 30000 });
  assert.equal(out.trim(), 'Client,ConnectionError,SERVER_ERROR_CODES,ServerError,Subscription,TimeoutError,WsPocError');
});
