// Type-checked by test.sh (`tsc --noEmit`) against the generated heartbeat_web.d.ts: the README's
// usage, and mistakes the types must reject (each `@ts-expect-error` fails the check if the
// line below it compiles).
import init, {
  HeartbeatSocket,
  type HeartbeatConfig,
  type HeartbeatEvent,
  type HeartbeatStatus,
} from '../www/pkg/heartbeat_web.js';

export async function connect(url: string): Promise<HeartbeatSocket> {
  await init();
  const config: HeartbeatConfig = { ping_interval: '15s', pong_timeout: '10s', slow_threshold: 2, max_missed_pongs: 4 };
  const socket = new HeartbeatSocket(url, config);
  socket.onStatus((status: HeartbeatStatus, rttMs: number | undefined) => {
    const warn: boolean = status === 'slow';
    console.log(warn ? 'Slow connection' : status, rttMs?.toFixed(1));
  });
  socket.onMessage((data) => {
    if (typeof data === 'string') console.log(JSON.parse(data));
    else console.log(data.byteLength);
  });
  socket.onEvent((event: HeartbeatEvent) => {
    if (event.type === 'reconnect') console.log(event.reason, event.backoff_ms, event.missed);
    if (event.type === 'pong_missed') console.log(`${event.missed}/${event.max_missed_pongs}`);
  });
  const sent: boolean = socket.send(JSON.stringify({ type: 'subscribe', channel: 'trades' }));
  console.log(sent, socket.status, socket.rttMs);
  return socket;
}

export function mistakes(socket: HeartbeatSocket): void {
  // @ts-expect-error: no such status
  const s: HeartbeatStatus = 'dead';
  // @ts-expect-error: a misspelt field is not a HeartbeatConfig
  const c: HeartbeatConfig = { ping_intervall: '15s' };
  // @ts-expect-error: counts are numbers
  const d: HeartbeatConfig = { slow_threshold: '2' };
  // @ts-expect-error: the status callback takes a status, not a number
  socket.onStatus((status: number) => status);
  // @ts-expect-error: 'rtt' events carry rtt_ms only
  socket.onEvent((e) => e.type === 'rtt' && e.missed);
  console.log(s, c, d);
}
