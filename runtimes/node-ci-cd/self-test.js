'use strict';
// Node.js part of the node images' self-test (run by ./self-test, not alone).
// The same file is in runtimes/node and runtimes/node-ci-cd (a test checks that
// the two copies are identical: each folder is its own build context).
//
// Reads EXPECTED_VERSION and EXPECTED_ARCH from the environment (./self-test
// has already checked that they are set and well formed). Prints one line per
// check, "ok - <what>" or "FAIL - <what>: <detail>", and exits 1 when any check
// failed. Needs no network: npm packs and installs a package made here.

const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

const EXPECTED_VERSION = process.env.EXPECTED_VERSION || '';
const EXPECTED_ARCH = process.env.EXPECTED_ARCH || '';

// Docker's architecture names for process.arch.
const ARCH_NAMES = { x64: 'amd64', arm64: 'arm64' };

let failures = 0;

function ok(what) {
  process.stdout.write(`ok - ${what}\n`);
}

function fail(what, detail) {
  failures += 1;
  const oneLine = String(detail).split(/\s+/).join(' ').trim();
  process.stdout.write(`FAIL - ${what}: ${oneLine}\n`);
}

// 22 matches 22 and 22.23.3; 3.13 matches 3.13.9; 3.1 does not match 3.13.0.
function versionMatches(actual, expected) {
  return actual === expected || actual.startsWith(`${expected}.`);
}

function lastLine(text) {
  const lines = String(text || '').split('\n').filter((l) => l.trim() !== '');
  return lines.length ? lines[lines.length - 1] : '(no output)';
}

// Runs a command; returns { status, out } with stdout and stderr together.
function run(command, args, options = {}) {
  const r = childProcess.spawnSync(command, args, {
    encoding: 'utf8',
    timeout: 300000,
    ...options,
  });
  if (r.error) {
    return { status: 127, out: `${command}: ${r.error.message}` };
  }
  return { status: r.status === null ? 128 : r.status, out: `${r.stdout || ''}${r.stderr || ''}`.trim() };
}

function checkVersion() {
  const actual = process.versions.node;
  if (versionMatches(actual, EXPECTED_VERSION)) {
    ok(`node version ${actual} matches EXPECTED_VERSION=${EXPECTED_VERSION}`);
  } else {
    fail(`node version matches EXPECTED_VERSION=${EXPECTED_VERSION}`, `${process.execPath} is Node.js ${actual}`);
  }
}

function checkArch() {
  const arch = ARCH_NAMES[process.arch] || process.arch;
  const what = `node sees architecture ${EXPECTED_ARCH}`;
  if (arch === EXPECTED_ARCH) {
    ok(`${what} (process.arch=${process.arch})`);
  } else {
    fail(what, `process.arch is ${process.arch} (${arch})`);
  }
}

function checkScript() {
  const what = 'a Node.js script computes correct results';
  const limit = 7920; // the 1000th prime
  const sieve = new Uint8Array(limit + 1).fill(1);
  sieve[0] = 0;
  sieve[1] = 0;
  for (let i = 2; i * i <= limit; i += 1) {
    if (sieve[i]) {
      for (let j = i * i; j <= limit; j += i) sieve[j] = 0;
    }
  }
  let count = 0;
  let sum = 0n;
  sieve.forEach((isPrime, i) => {
    if (isPrime) {
      count += 1;
      sum += BigInt(i);
    }
  });
  const digest = crypto.createHash('sha256').update('evergreen self-test').digest('hex');
  const wantDigest = 'b4ee810a46e78acd2d95e84ffeb61349974eea06b3a44f39999227a8e808b4ef';
  const text = JSON.stringify({ count, sum: sum.toString() });
  const roundTrip = zlib.gunzipSync(zlib.gzipSync(Buffer.from(text))).toString();
  // Official Node.js builds carry full ICU: a German number format proves it.
  const formatted = new Intl.NumberFormat('de-DE').format(1234.5);
  if (count !== 1000 || sum !== 3682913n) {
    fail(what, `primes up to 7920: got ${count} summing to ${sum}, want 1000 summing to 3682913`);
  } else if (digest !== wantDigest) {
    fail(what, `sha256 got ${digest}, want ${wantDigest}`);
  } else if (roundTrip !== text) {
    fail(what, `gzip round trip changed ${text} into ${roundTrip}`);
  } else if (formatted !== '1.234,5') {
    fail(what, `Intl.NumberFormat('de-DE') gave '${formatted}', want '1.234,5' (no full ICU?)`);
  } else {
    ok(`${what} (primes, BigInt, sha256, gzip, Intl)`);
  }
}

// npm with a private cache and config, so that nothing reaches the network or
// the user's settings.
function npmEnv(tmp) {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.toLowerCase().startsWith('npm_config_')) delete env[key];
  }
  return {
    ...env,
    npm_config_cache: path.join(tmp, 'npm-cache'),
    npm_config_userconfig: path.join(tmp, 'npmrc'),
    npm_config_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_loglevel: 'error',
  };
}

function checkNpmVersion() {
  const what = 'npm --version';
  const r = run('npm', ['--version'], { env: npmEnv(os.tmpdir()) });
  if (r.status !== 0) {
    fail(what, `exit status ${r.status}: ${lastLine(r.out)}`);
  } else if (!/^\d+\.\d+\.\d+/.test(r.out)) {
    fail(what, `unexpected output: ${r.out}`);
  } else {
    ok(`${what} is ${r.out}`);
  }
}

function checkNpmPackInstall() {
  const what = 'npm pack + offline npm install of a local package';
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'self-test-node-'));
  try {
    const env = npmEnv(tmp);
    const pkg = path.join(tmp, 'pkg');
    const app = path.join(tmp, 'app');
    fs.mkdirSync(pkg);
    fs.mkdirSync(app);
    fs.writeFileSync(
      path.join(pkg, 'package.json'),
      JSON.stringify({ name: 'evergreen-self-test-pkg', version: '1.0.0', main: 'index.js', license: 'MIT' }),
    );
    fs.writeFileSync(path.join(pkg, 'index.js'), 'exports.answer = () => [1, 2, 3].reduce((a, b) => a + b, 0) * 7;\n');
    fs.writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'evergreen-self-test-app', version: '1.0.0', private: true }),
    );

    let r = run('npm', ['pack', '--pack-destination', tmp, pkg], { cwd: tmp, env });
    const tarball = path.join(tmp, 'evergreen-self-test-pkg-1.0.0.tgz');
    if (r.status !== 0 || !fs.existsSync(tarball)) {
      fail(what, `npm pack exited ${r.status}: ${lastLine(r.out)}`);
      return;
    }
    r = run('npm', ['install', '--offline', '--ignore-scripts', tarball], { cwd: app, env });
    if (r.status !== 0) {
      fail(what, `npm install exited ${r.status}: ${lastLine(r.out)}`);
      return;
    }
    r = run('npm', ['ls', '--offline', 'evergreen-self-test-pkg'], { cwd: app, env });
    if (r.status !== 0) {
      fail(what, `npm ls exited ${r.status}: ${lastLine(r.out)}`);
      return;
    }
    r = run(process.execPath, ['-e', "process.stdout.write(String(require('evergreen-self-test-pkg').answer()))"], {
      cwd: app,
      env,
    });
    if (r.status !== 0 || r.out !== '42') {
      fail(what, `requiring the installed package gave exit ${r.status}: ${lastLine(r.out)}`);
      return;
    }
    ok(what);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function main() {
  for (const check of [checkVersion, checkArch, checkScript, checkNpmVersion, checkNpmPackInstall]) {
    try {
      check();
    } catch (e) {
      // A crash is a failed check, not a stack trace.
      fail(check.name, e && e.stack ? e.stack.split('\n')[0] : e);
    }
  }
  process.exitCode = failures ? 1 : 0;
}

if (require.main === module) {
  main();
} else {
  module.exports = { versionMatches }; // for runtimes/selftest_test.go
}
