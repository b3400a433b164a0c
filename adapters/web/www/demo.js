// The demo page: one HeartbeatSocket, a status badge, the last RTT and an event log.
// Query parameters: ?ws=ws://host/ws (default: /ws on this server) and ?config={"ping_interval":"500ms",...}.
// Everything it shows is also kept in `window.demo` for the browser tests.
import init, { HeartbeatSocket } from './pkg/heartbeat_web.js';

const LABELS = {
  connecting: 'Connecting…',
  healthy: 'Connected',
  slow: 'Slow connection',
  reconnecting: 'Reconnecting…',
  closed: 'Closed',
};

const $ = (id) => document.getElementById(id);
const started = performance.now();
const demo = { ready: false, error: null, statuses: [], events: [], messages: [], socket: null };
window.demo = demo;

function log(kind, text) {
  const line = document.createElement('div');
  line.className = kind;
  line.textContent = `${((performance.now() - started) / 1000).toFixed(3).padStart(8)}s  ${text}`;
  $('log').prepend(line);
  while ($('log').childElementCount > 300) $('log').lastChild.remove();
}

function describe(event) {
  const { type, ...rest } = event;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(2) : v}`);
  return [type, ...fields].join(' ');
}

async function main() {
  const params = new URLSearchParams(location.search);
  const url = params.get('ws') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const config = JSON.parse(params.get('config') ?? '{}');
  $('url').textContent = url;
  $('config').textContent = JSON.stringify(config);

  await init();
  const socket = new HeartbeatSocket(url, config);
  demo.socket = socket;

  socket.onEvent((event) => {
    demo.events.push({ at: performance.now(), ...event });
    if (event.type === 'pong_missed') $('missed').textContent = `${event.missed} of ${event.max_missed_pongs}`;
    if (event.type === 'recovered' || event.type === 'connected') $('missed').textContent = '0';
    if (event.type === 'reconnect') $('reconnects').textContent = String(demo.events.filter((e) => e.type === 'reconnect').length);
    if (event.type !== 'rtt') log(event.type, describe(event));
  });
  socket.onStatus((status, rttMs) => {
    demo.statuses.push({ at: performance.now(), status, rttMs });
    const badge = $('badge');
    badge.dataset.status = status;
    badge.textContent = LABELS[status] ?? status;
    $('rtt').textContent = rttMs === undefined ? '–' : `${rttMs.toFixed(1)} ms`;
    // The callback also runs for each new RTT; the log keeps status changes only.
    const previous = demo.statuses[demo.statuses.length - 2];
    if (previous?.status !== status) {
      log('status', `status ${status}${rttMs === undefined ? '' : ` (last rtt ${rttMs.toFixed(1)} ms)`}`);
    }
  });
  socket.onMessage((data) => {
    demo.messages.push({ at: performance.now(), data });
    $('received').textContent = typeof data === 'string' ? data : `${data.byteLength} bytes`;
    log('message', `message ${typeof data === 'string' ? data : `${data.byteLength} bytes`}`);
  });

  $('send-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const sent = socket.send($('text').value);
    log('message', sent ? `sent ${$('text').value}` : 'not sent: no open connection');
  });
  demo.ready = true;
}

main().catch((e) => {
  demo.error = String(e?.message ?? e);
  $('error').textContent = demo.error;
  log('reconnect', `error: ${demo.error}`);
});
