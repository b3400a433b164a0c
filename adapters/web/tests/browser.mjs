// Browser tests of heartbeat-web: the demo page in a real headless Chromium against the tokio
// example server on 127.0.0.1, with the short config in fast.json (ping 500ms, pong timeout
// 400ms, slow after 2 misses, reconnect after 6).
//
//   node tests/browser.mjs --server BIN --static-dir DIR --config FILE --artifacts DIR
//
// Scenarios: healthy (RTT, echoed message); the config API (defaults, errors); page hints
// (hidden/offline change nothing, visible probes); the page frozen past a pong deadline (a
// stall, not a miss); the server stopped (SIGSTOP) and then stalled
// from within (POST /control/stall, with --allow-stall) -> 'slow' then 'healthy', no reconnect, with a screenshot of the
// slow page; the server killed -> 'reconnecting', then 'healthy' again once restarted on the
// same port; a throwing application callback (reported, the socket goes on); close() -> 'closed'
// and silence. Every wait is bounded; a failure prints what the
// page saw.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, createWriteStream } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    'static-dir': { type: 'string' },
    config: { type: 'string' },
    artifacts: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    'pid-file': { type: 'string' },
  },
});
for (const name of ['server', 'static-dir', 'config', 'artifacts']) {
  if (!args[name]) throw new Error(`missing --${name}`);
}
const artifacts = resolve(args.artifacts);
mkdirSync(artifacts, { recursive: true });
const fullConfig = JSON.parse(readFileSync(args.config, 'utf8'));
const clientConfig = fullConfig.client;

const started = Date.now();
const since = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the server process ----

let server = null;
const serverLog = createWriteStream(join(artifacts, 'server.log'), { flags: 'w' });

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** The server's environment: fast.json alone decides its config, not HEARTBEAT_* overrides. */
function serverEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HEARTBEAT_')));
  env.RUST_LOG = process.env.RUST_LOG ?? 'info';
  return env;
}

async function startServer(port) {
  for (let attempt = 1; ; attempt++) {
    const child = spawn(
      args.server,
      // --allow-stall: the stall test below uses POST /control/stall (off by default).
      [args.config, '--addr', `127.0.0.1:${port}`, '--static-dir', args['static-dir'], '--allow-stall'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv() },
    );
    let err = '';
    child.stderr.on('data', (chunk) => {
      serverLog.write(chunk);
      err += chunk;
    });
    const ready = await new Promise((res) => {
      let out = '';
      const timer = setTimeout(() => res(false), 15_000);
      child.stdout.on('data', (chunk) => {
        serverLog.write(chunk);
        out += chunk;
        if (out.includes('listening on')) {
          clearTimeout(timer);
          res(true);
        }
      });
      child.on('exit', () => {
        clearTimeout(timer);
        res(false);
      });
    });
    if (ready) {
      server = child;
      if (args['pid-file']) writeFileSync(args['pid-file'], `${child.pid}\n`);
      console.log(`[${since()}] server pid ${child.pid} listening on 127.0.0.1:${port}`);
      return;
    }
    child.kill('SIGKILL');
    const why = err.trim().split('\n').slice(-5).join('\n  ');
    // Only a port still held for a moment after a kill is worth another try.
    if (!err.includes('cannot listen') || attempt >= 20) {
      throw new Error(`server did not start on 127.0.0.1:${port} (attempt ${attempt}):\n  ${why}`);
    }
    await sleep(250);
  }
}

function killServer(signal = 'SIGKILL') {
  if (!server) return Promise.resolve();
  const child = server;
  server = null;
  const exited = new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res();
    else child.on('exit', res);
  });
  child.kill('SIGCONT');
  child.kill(signal);
  return Promise.race([exited, sleep(5_000)]);
}

function httpPost(port, path) {
  // A raw request, so nothing (proxies, keep-alive pools) stands between us and the server.
  return new Promise((res, rej) => {
    const sock = connect({ host: '127.0.0.1', port }, () => {
      sock.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    });
    let data = '';
    sock.setTimeout(5_000, () => sock.destroy(new Error(`POST ${path}: timeout`)));
    sock.on('data', (d) => (data += d));
    sock.on('end', () => res(data));
    sock.on('error', rej);
  });
}

// ---- the page ----

let browser = null;
let page = null;
const consoleLines = [];

async function pageState() {
  if (!page) return 'no page';
  try {
    return await page.evaluate(() => {
      const d = window.demo ?? {};
      return {
        badge: document.getElementById('badge')?.textContent,
        rtt: document.getElementById('rtt')?.textContent,
        error: d.error,
        statuses: (d.statuses ?? []).slice(-12).map((s) => `${s.status}${s.rttMs === undefined ? '' : `@${s.rttMs.toFixed(1)}ms`}`),
        events: (d.events ?? []).slice(-25).map(({ at, ...e }) => JSON.stringify(e)),
        messages: (d.messages ?? []).slice(-5).map((m) => m.data),
      };
    });
  } catch (e) {
    return `page not readable: ${e}`;
  }
}

async function fail(message) {
  const state = await pageState();
  const text = `FAILED at ${since()}: ${message}\npage saw: ${JSON.stringify(state, null, 2)}\n` +
    `console (last 20):\n  ${consoleLines.slice(-20).join('\n  ')}`;
  try {
    await page?.screenshot({ path: join(artifacts, 'failure.png'), fullPage: true });
  } catch {}
  throw new Error(text);
}

/** Waits until `fn(demo)`, evaluated in the page, is truthy; at most `ms`. */
async function waitFor(what, ms, fn, arg) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await page.evaluate(fn, arg).catch((e) => fail(`${what}: ${e}`));
    if (v) return v;
    if (Date.now() > deadline) return fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

const status = () => page.evaluate(() => window.demo.socket.status);
const eventCount = () => page.evaluate(() => window.demo.events.length);
const eventsSince = (n) => page.evaluate((n) => window.demo.events.slice(n).map(({ at, ...e }) => e), n);
/** The distinct statuses shown since event-independent index `n` of `demo.statuses`. */
const statusesSince = (n) =>
  page.evaluate((n) => {
    const out = [];
    for (const s of window.demo.statuses.slice(n)) if (out[out.length - 1] !== s.status) out.push(s.status);
    return out;
  }, n);
const statusCount = () => page.evaluate(() => window.demo.statuses.length);

function check(cond, message) {
  if (!cond) return fail(message);
  return undefined;
}

async function echo(tag) {
  const text = JSON.stringify({ type: 'chat', text: tag });
  const sent = await page.evaluate((t) => window.demo.socket.send(t), text);
  await check(sent, `send(${text}) returned false on an open connection`);
  await waitFor(`the echo of ${text}`, 3_000, (t) => window.demo.messages.some((m) => m.data === t), text);
}

// ---- the scenarios ----

async function api() {
  // The module is the one demo.js initialised; these sockets point at a closed port.
  const r = await page.evaluate(async () => {
    const { HeartbeatSocket } = await import('./pkg/heartbeat_web.js');
    const attempt = (config) => {
      try {
        const socket = new HeartbeatSocket('ws://127.0.0.1:9/ws', config);
        const status = socket.status;
        socket.close();
        return { ok: status, after: socket.status, send: socket.send('x') };
      } catch (e) {
        return { error: String(e?.message ?? e) };
      }
    };
    return {
      defaults: attempt(undefined),
      partial: attempt({ ping_interval: '20s' }),
      unknown: attempt({ ping_intervall: '1s' }),
      duration: attempt({ pong_timeout: '2 parsecs' }),
      rules: attempt({ ping_interval: '1s', pong_timeout: '2s', slow_threshold: 4, max_missed_pongs: 4 }),
    };
  });
  const want = (cond, what) => check(cond, `config API: ${what}: ${JSON.stringify(r)}`);
  await want(r.defaults.ok === 'connecting' && r.defaults.after === 'closed' && r.defaults.send === false, 'defaults');
  await want(r.partial.ok === 'connecting', 'a partial config takes defaults');
  await want(r.unknown.error?.includes('ping_intervall'), 'an unknown field is named');
  await want(r.duration.error?.includes('2 parsecs'), 'a bad duration is quoted');
  await want(r.rules.error?.includes('client.pong_timeout (2s)') && r.rules.error?.includes('client.slow_threshold (4)'),
    'every broken rule is reported');
  console.log(`[${since()}] ok config API: defaults, partial config, errors name the field, the text and every rule`);
}

async function throwingCallback() {
  // An application callback that throws is reported like an uncaught exception and does not
  // stop the socket.
  const before = consoleLines.length;
  await page.evaluate(() => {
    window.demo.socket.onMessage((data) => {
      window.demo.messages.push({ at: performance.now(), data });
      throw new Error('application bug in onMessage');
    });
  });
  await echo('into a throwing callback');
  await echo('and the socket goes on');
  const reported = consoleLines.slice(before).filter((l) => l.includes('application bug in onMessage'));
  await check(reported.length >= 2, `the callback's exceptions were not reported: ${JSON.stringify(consoleLines.slice(before))}`);
  await check((await status()) === 'healthy', `status ${await status()} after throwing callbacks`);
  console.log(`[${since()}] ok throwing callback: ${reported.length} exceptions reported as uncaught, socket still healthy`);
}

async function closed() {
  await page.evaluate(() => window.demo.socket.close());
  await waitFor("status 'closed' after close()", 2_000, () => window.demo.socket.status === 'closed');
  const n = await eventCount();
  await sleep(1_200);
  const after = await eventsSince(n);
  await check(after.length === 0, `events after close(): ${JSON.stringify(after)}`);
  const sent = await page.evaluate(() => window.demo.socket.send('{"type":"chat","text":"late"}'));
  await check(sent === false, 'send() after close() returned true');
  const badge = await page.textContent('#badge');
  await check(badge === 'Closed', `badge says ${JSON.stringify(badge)} after close()`);
  console.log(`[${since()}] ok close: status 'closed', no events for 1.2 s, send() refuses`);
}

async function healthy() {
  await waitFor("status 'healthy' with an RTT", 10_000, () =>
    window.demo.statuses.some((s) => s.status === 'healthy' && s.rttMs !== undefined));
  const badge = await page.textContent('#badge');
  const rtt = await page.textContent('#rtt');
  await check(badge === 'Connected', `badge says ${JSON.stringify(badge)}, expected "Connected"`);
  await check(/^\d+(\.\d)? ms$/.test(rtt), `RTT shows ${JSON.stringify(rtt)}`);
  await echo('hello');
  const received = await page.textContent('#received');
  await check(received.includes('hello'), `the page shows ${JSON.stringify(received)} as last message`);
  // Three more pings answered, still healthy: the echo is not mistaken for a heartbeat.
  const n = await eventCount();
  await waitFor('three more RTT samples', 5_000, (n) =>
    window.demo.events.slice(n).filter((e) => e.type === 'rtt').length >= 3, n);
  await check((await status()) === 'healthy', `status ${await status()} after pings`);
  console.log(`[${since()}] ok healthy: badge "${badge}", RTT ${rtt}, echo received`);
}

async function hints() {
  const n = await eventCount();
  const s = await statusCount();
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event('offline'));
  });
  await sleep(1_200);
  const hidden = await eventsSince(n);
  await check(hidden.some((e) => e.type === 'hint' && e.hint === 'hidden'), 'no hidden hint was logged');
  await check(hidden.some((e) => e.type === 'hint' && e.hint === 'offline'), 'no offline hint was logged');
  await check(!hidden.some((e) => e.type === 'reconnect'), `hidden/offline caused a reconnect: ${JSON.stringify(hidden)}`);

  // Visible probes at once (when the last ping is older than the pong timeout): show the page
  // 420 ms after a pong, i.e. after the 400 ms pong timeout and before the next ping is due at
  // 500 ms, and check that the next RTT sample is for a ping sent before that schedule.
  const probe = await page.evaluate(async (pingMs) => {
    const d = window.demo;
    const nextRtt = (from, ms) => new Promise((res) => {
      const give = setTimeout(() => { clearInterval(poll); res(null); }, ms);
      const poll = setInterval(() => {
        const e = d.events.slice(from).find((e) => e.type === 'rtt');
        if (e) { clearInterval(poll); clearTimeout(give); res(e); }
      }, 2);
    });
    for (let attempt = 1; attempt <= 5; attempt++) {
      const last = await nextRtt(d.events.length, 2_000);
      if (!last) return { error: 'no RTT sample for 2 s' };
      const lastSent = last.at - last.rtt_ms;
      await new Promise((r) => setTimeout(r, 420 - (performance.now() - lastSent)));
      const shownAt = performance.now();
      if (shownAt > lastSent + pingMs - 30) continue; // this page's timer fired late; again
      const from = d.events.length;
      delete document.visibilityState;
      Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
      const rtt = await nextRtt(from, 2_000);
      if (!rtt) return { error: 'no RTT sample for 2 s after visible' };
      const sent = rtt.at - rtt.rtt_ms;
      return { attempt, sinceLastPing: shownAt - lastSent, probeAfter: sent - shownAt, dueAt: lastSent + pingMs - shownAt };
    }
    return { error: 'timers late in 5 attempts' };
  }, 500);
  await check(!probe.error, `visible probe: ${probe.error}`);
  await check(probe.probeAfter < probe.dueAt - 5,
    `after 'visible' the next ping went ${probe.probeAfter.toFixed(1)} ms later, on the regular schedule ` +
    `(due ${probe.dueAt.toFixed(1)} ms later), not at once: ${JSON.stringify(probe)}`);
  const m = await eventCount();
  await page.evaluate(() => window.dispatchEvent(new Event('online')));
  await sleep(300);
  const after = await eventsSince(n);
  await check(after.some((e) => e.type === 'hint' && e.hint === 'visible'), 'no visible hint was logged');
  await check((await eventsSince(m)).some((e) => e.type === 'hint' && e.hint === 'online'), 'no online hint was logged');
  await check(!after.some((e) => e.type === 'reconnect' || e.type === 'connect'), `hints caused a reconnect: ${JSON.stringify(after)}`);
  const seen = await statusesSince(s);
  await check(seen.length === 0 || JSON.stringify(seen) === '["healthy"]', `hints changed the status: ${JSON.stringify(seen)}`);
  await page.evaluate(() => { delete document.visibilityState; });
  console.log(`[${since()}] ok hints: hidden/offline changed nothing; visible ${probe.sinceLastPing.toFixed(0)} ms after a ping ` +
    `probed ${probe.probeAfter.toFixed(1)} ms later (next ping was due in ${probe.dueAt.toFixed(0)} ms)`);
}

async function pageFrozen() {
  // The page itself stops running (a throttled background tab, a sleeping laptop): freeze its
  // main thread for 2.5 s right after a ping leaves, so the pong deadline passes while nothing
  // runs. The core must see a late timer (a stall), not a dead server: no miss, no 'slow'.
  await waitFor("status 'healthy' before the freeze", 5_000, () => window.demo.socket.status === 'healthy');
  const n = await eventCount();
  const s = await statusCount();
  const frozen = await page.evaluate(() => new Promise((resolve) => {
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      send.call(this, data);
      if (typeof data === 'string' && data.includes('"ping"')) {
        WebSocket.prototype.send = send;
        const start = performance.now();
        while (performance.now() - start < 2_500) { /* frozen */ }
        resolve(performance.now() - start);
      }
    };
  }));
  await sleep(1_500);
  const events = await eventsSince(n);
  const seen = await statusesSince(s);
  await check(!events.some((e) => ['pong_missed', 'slow', 'reconnect', 'connect'].includes(e.type)),
    `a frozen page was taken for a dead server: ${JSON.stringify(events.filter((e) => e.type !== 'rtt'))}`);
  await check(seen.every((x) => x === 'healthy'), `statuses ${JSON.stringify(seen)} around the freeze`);
  const stalled = events.find((e) => e.type === 'stalled');
  console.log(`[${since()}] ok page frozen ${frozen.toFixed(0)} ms: no miss, still healthy` +
    (stalled ? `; the core saw the stall (timer ${stalled.late_by_ms.toFixed(0)} ms late) and probed` : '; the pong was read before the timer'));
}

async function slowThenHealthy(label, stall, resume) {
  await waitFor("status 'healthy' before the stall", 5_000, () => window.demo.socket.status === 'healthy');
  const n = await eventCount();
  const s = await statusCount();
  const t0 = Date.now();
  await stall();
  await waitFor(`status 'slow' (${label})`, 4_000, () => window.demo.socket.status === 'slow');
  const slowAfter = Date.now() - t0;
  let shot = null;
  if (label === 'SIGSTOP') {
    shot = join(artifacts, 'slow.png');
    await page.screenshot({ path: shot, fullPage: true });
    const badge = await page.textContent('#badge');
    await check(badge === 'Slow connection', `badge says ${JSON.stringify(badge)} while slow`);
  }
  await resume();
  await waitFor(`status 'healthy' again (${label})`, 5_000, () => window.demo.socket.status === 'healthy');
  // The status was 'healthy' when counted; a pong read before the stall reports 'healthy' again
  // with its RTT, which is no change.
  const reported = await statusesSince(s);
  const seen = reported[0] === 'healthy' ? reported.slice(1) : reported;
  const events = await eventsSince(n);
  await check(!events.some((e) => e.type === 'reconnect' || e.type === 'connect'),
    `${label}: the client reconnected: ${JSON.stringify(events.filter((e) => e.type !== 'rtt'))}`);
  await check(JSON.stringify(seen) === '["slow","healthy"]', `${label}: statuses ${JSON.stringify(reported)}, expected slow then healthy`);
  await check(events.some((e) => e.type === 'recovered'), `${label}: no 'recovered' event`);
  await echo(`after ${label}`);
  const missed = Math.max(...events.filter((e) => e.type === 'pong_missed').map((e) => e.missed));
  console.log(`[${since()}] ok ${label}: slow after ${slowAfter} ms (${missed} pongs missed), healthy again, no reconnect` +
    (shot ? `; screenshot ${shot}` : ''));
}

async function serverGone(port) {
  await waitFor("status 'healthy' before the kill", 5_000, () => window.demo.socket.status === 'healthy');
  const n = await eventCount();
  const s = await statusCount();
  await killServer('SIGKILL');
  await waitFor("status 'reconnecting' after the kill", 3_000, () => window.demo.socket.status === 'reconnecting');
  // Down for a while: attempts fail and back off; the page keeps saying 'reconnecting'.
  await sleep(2_000);
  await check((await status()) === 'reconnecting', `status ${await status()} while the server is down`);
  await page.screenshot({ path: join(artifacts, 'reconnecting.png'), fullPage: true });
  const down = await eventsSince(n);
  const attempts = down.filter((e) => e.type === 'connect').length;
  await check(attempts >= 1, `no reconnect attempt while the server was down: ${JSON.stringify(down)}`);
  await startServer(port);
  await waitFor("status 'healthy' after the restart", 8_000, () => window.demo.socket.status === 'healthy');
  const seen = await statusesSince(s);
  await check(seen[0] === 'reconnecting' && seen[seen.length - 1] === 'healthy' && !seen.includes('slow'),
    `statuses ${JSON.stringify(seen)}, expected reconnecting ... healthy (no slow: a closed socket is not a slow server)`);
  const reasons = [...new Set((await eventsSince(n)).filter((e) => e.type === 'reconnect').map((e) => e.reason))];
  await echo('after restart');
  await page.screenshot({ path: join(artifacts, 'healthy.png'), fullPage: true });
  console.log(`[${since()}] ok server gone: reconnecting (${attempts} attempts while down, reasons ${reasons.join(', ')}), healthy after restart, echo on the new connection`);
}

async function main() {
  const port = await freePort();
  await startServer(port);
  browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    chromiumSandbox: false,
    // Playwright gives each launch a fresh, temporary --user-data-dir.
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1000, height: 720 } });
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e}`));
  const url = `http://127.0.0.1:${port}/?config=${encodeURIComponent(JSON.stringify(clientConfig))}`;
  await page.goto(url, { timeout: 15_000 });
  await waitFor('the demo page to load the wasm and start', 10_000, () => window.demo?.ready || window.demo?.error);
  const error = await page.evaluate(() => window.demo.error);
  await check(!error, `the demo page failed to start: ${error}`);
  console.log(`[${since()}] page loaded: ${url}`);

  await healthy();
  await api();
  await hints();
  await pageFrozen();
  await slowThenHealthy(
    'SIGSTOP',
    async () => server.kill('SIGSTOP'),
    async () => server.kill('SIGCONT'),
  );
  await slowThenHealthy(
    'POST /control/stall?secs=2',
    async () => {
      const reply = await httpPost(port, '/control/stall?secs=2');
      if (!reply.startsWith('HTTP/1.1 200')) await fail(`/control/stall answered ${JSON.stringify(reply.slice(0, 200))}`);
    },
    async () => {},
  );
  await serverGone(port);
  await throwingCallback();
  await closed();

  const errors = consoleLines.filter((l) => l.startsWith('pageerror') && !l.includes('application bug in onMessage'));
  await check(errors.length === 0, `page errors: ${errors.join('; ')}`);
  writeFileSync(join(artifacts, 'events.json'), JSON.stringify(await page.evaluate(() => window.demo.events), null, 1));
  console.log(`[${since()}] all browser tests passed; artifacts in ${artifacts}`);
}

let code = 0;
try {
  await main();
} catch (e) {
  console.error(String(e?.stack ?? e));
  code = 1;
} finally {
  writeFileSync(join(artifacts, 'console.log'), consoleLines.join('\n') + '\n');
  await browser?.close().catch(() => {});
  await killServer('SIGKILL');
  serverLog.end();
}
process.exit(code);
