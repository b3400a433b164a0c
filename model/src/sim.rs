//! A seeded, deterministic discrete-event world that runs the real `heartbeat_core::Client` and
//! `Server` values: N clients, one server process holding one `Server` per connection, a
//! network with latency, loss, duplication, reordering and partitions, and faults on a
//! schedule (server busy, frozen, crashed, host down; client timers throttled or asleep; host
//! hints).
//!
//! It owns only the world: sockets, wires, clocks and faults. Every liveness decision is the
//! core's; this module never looks inside a `Client` or `Server` beyond their public API.
//!
//! Determinism: all randomness comes from one seed through [`Rng`] (xoshiro256**, integers
//! only); events leave the queue ([`crate::queue::EventQueue`]) by time, and events at the same
//! time in the order they were scheduled. The same [`Setup`] and schedule give the same trace,
//! byte for byte, on any platform.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use heartbeat_core::{
    Client, CloseReason, Config, ConfigErrors, Event, Hint, Instant, Message, ReconnectReason,
    Server, ServerEvent, Status,
};

use crate::queue::EventQueue;
use crate::render::fmt_dur;
use crate::trace::{Trace, What, Who};

/// A small, fast, portable PRNG: xoshiro256** seeded through splitmix64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole sequence is fixed by `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform value in `lo..=hi` (`lo` if `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        // Multiply-shift: unbiased enough for a simulator, and integer-only.
        lo + ((u128::from(self.next_u64()) * u128::from(span + 1)) >> 64) as u64
    }

    /// True with probability `ppm` parts per million.
    pub fn chance(&mut self, ppm: u32) -> bool {
        ppm != 0 && self.range(0, 999_999) < u64::from(ppm)
    }
}

/// How long one message takes, one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latency {
    /// Always this long.
    Fixed(Duration),
    /// Uniform between the two, inclusive.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// Mostly around `typical`, with a long tail up to `max` (never beyond): 90% uniform in
    /// `typical/2 ..= 3*typical/2`, 9% up to `max/4`, 1% up to `max`. Integer-only, so portable.
    LongTail {
        /// The usual latency.
        typical: Duration,
        /// The hard ceiling of the tail.
        max: Duration,
    },
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Latency {
    /// A sample, in microseconds.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        match *self {
            Latency::Fixed(d) => us(d),
            Latency::Uniform { min, max } => rng.range(us(min), us(max)),
            Latency::LongTail { typical, max } => {
                let (t, m) = (us(typical), us(max));
                let bucket = rng.range(0, 999);
                let v = if bucket < 900 {
                    rng.range(t / 2, t.saturating_mul(3) / 2)
                } else if bucket < 990 {
                    rng.range(t, (m / 4).max(t))
                } else {
                    rng.range((m / 4).max(t), m.max(t))
                };
                v.min(m.max(t / 2))
            }
        }
    }

    /// The largest value a sample can take.
    #[must_use]
    pub fn max(&self) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform { max, .. } => max,
            Latency::LongTail { typical, max } => max.max(typical / 2),
        }
    }
}

/// The network between every client and the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    /// One-way delay of each message, sampled independently.
    pub latency: Latency,
    /// Probability (parts per million) that a message is lost.
    pub loss_ppm: u32,
    /// Probability (parts per million) that a message is delivered twice.
    pub duplicate_ppm: u32,
    /// False (the default) keeps each direction of a connection in order, as TCP does; true lets
    /// a later message overtake an earlier one when its sampled latency is shorter.
    pub reorder: bool,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency: Latency::Fixed(Duration::from_millis(50)),
            loss_ppm: 0,
            duplicate_ppm: 0,
            reorder: false,
        }
    }
}

/// Which clients the trace records. Recording is cheap but not free: keep it `Off` or
/// `Client(0)` for big worlds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    /// Record nothing (the [`Stats`] are still kept).
    Off,
    /// Record client `n`, its server side, and world notes.
    Client(u32),
    /// Record everything.
    All,
}

/// Everything that defines a world, except its fault schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// The configuration of both sides (each side must be valid on its own; the pair need not
    /// be, so that broken configurations can be shown failing).
    pub config: Config,
    /// Number of clients.
    pub clients: u32,
    /// The one seed of every random choice.
    pub seed: u64,
    /// The network.
    pub network: Network,
    /// Time from the server reading a ping to writing its pong (`network.max_server_delay` in
    /// the assumptions), sampled per pong.
    pub server_delay: Latency,
    /// Each client timer fires up to this late (uniform), like a busy event loop.
    pub timer_jitter: Duration,
    /// Clients start (ask to connect) spread uniformly over this long.
    pub start_spread: Duration,
    /// Give every client the same backoff seed: reconnects are then not jittered apart, the
    /// way a fleet of identical programs with a fixed seed (or no jitter) behaves.
    pub same_client_seed: bool,
    /// What the trace records.
    pub trace: TraceMode,
    /// Stop after this many events, whatever the time (a bound, never reached by design).
    pub max_events: u64,
}

impl Setup {
    /// One client, seed 0, 50 ms fixed latency, no jitter, everything traced.
    #[must_use]
    pub fn new(config: Config) -> Setup {
        Setup {
            config,
            clients: 1,
            seed: 0,
            network: Network::default(),
            server_delay: Latency::Fixed(Duration::ZERO),
            timer_jitter: Duration::ZERO,
            start_spread: Duration::ZERO,
            same_client_seed: false,
            trace: TraceMode::All,
            max_events: 1 << 40,
        }
    }
}

/// Something that happens to the world at a scheduled time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The server is overloaded for this long: it still reads (so it knows the client is
    /// alive), but every pong it writes waits until the end, while its own pings still leave on
    /// schedule. This is our server's design under overload.
    ServerBusy(Duration),
    /// The whole server process stalls for this long (a blocked event loop, like the story's
    /// Python backend): nothing is read or written and no timer fires until the end.
    ServerFrozen(Duration),
    /// The server process exits: every connection is reset (clients see the close one latency
    /// later) and new connections are refused until [`Fault::ServerRestart`].
    ServerCrash,
    /// The server host vanishes: connections go silent (no close reaches anyone) and
    /// connection attempts time out, until [`Fault::ServerRestart`].
    ServerHostDown,
    /// The server is back and accepts connections.
    ServerRestart,
    /// Every message between the clients and the server, either way, is lost for this long.
    Partition(Duration),
    /// The client's timers fire at most once per `period` (aligned to multiples of it) for
    /// `duration`: a background tab.
    ClientThrottled {
        /// Which client.
        client: u32,
        /// The throttling period (browsers: one minute).
        period: Duration,
        /// How long the throttling lasts.
        duration: Duration,
    },
    /// The client's machine sleeps for this long: no timer fires and its network is down
    /// (what is sent to it is lost); then it resumes.
    ClientAsleep {
        /// Which client.
        client: u32,
        /// How long it sleeps.
        duration: Duration,
    },
    /// A host hint to a client.
    Hint {
        /// Which client.
        client: u32,
        /// The hint.
        hint: Hint,
    },
    /// A note in the trace.
    Note(Cow<'static, str>),
}

/// Counters kept for every client whatever the trace mode, cheap enough for big worlds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed (messages delivered, timers fired, connections, faults).
    pub events: u64,
    /// Pings written by clients.
    pub client_pings: u64,
    /// Pongs read by clients.
    pub client_pongs: u64,
    /// Pings written by the server.
    pub server_pings: u64,
    /// Messages lost by the network (loss, partition, dead or sleeping peer).
    pub lost: u64,
    /// `Event::PongMissed` count.
    pub misses: u64,
    /// `Event::Slow` count: slow windows opened.
    pub slow: u64,
    /// `Event::Recovered` count.
    pub recovered: u64,
    /// `Event::Stalled` count.
    pub stalls: u64,
    /// `Event::Reconnect` count by reason: missed pongs, connection closed, connect failed,
    /// connect timeout.
    pub reconnects: [u64; 4],
    /// `ServerEvent::Close` count by reason: idle timeout, too many pings.
    pub server_closes: [u64; 2],
    /// `Event::Connect` count (connection attempts).
    pub connects: u64,
    /// Connections the server accepted.
    pub accepts: u64,
    /// Client RTT histogram: count per whole millisecond (the last bucket holds everything
    /// longer).
    pub rtt_ms: Vec<u64>,
    /// Connection attempts per simulated second.
    pub connects_per_sec: Vec<u32>,
    /// Connections accepted per simulated second.
    pub accepts_per_sec: Vec<u32>,
}

const RTT_BUCKETS: usize = 60_001;

impl Stats {
    /// All reconnects, whatever the reason.
    #[must_use]
    pub fn total_reconnects(&self) -> u64 {
        self.reconnects.iter().sum()
    }

    /// All server closes, whatever the reason.
    #[must_use]
    pub fn total_server_closes(&self) -> u64 {
        self.server_closes.iter().sum()
    }

    /// RTT samples recorded.
    #[must_use]
    pub fn rtt_samples(&self) -> u64 {
        self.rtt_ms.iter().sum()
    }

    /// The `p`-th percentile (0..=100, nearest rank) of client RTTs, to the millisecond.
    #[must_use]
    pub fn rtt_percentile(&self, p: u32) -> Option<Duration> {
        let n = self.rtt_samples();
        if n == 0 {
            return None;
        }
        let rank = (u64::from(p.min(100)) * n).div_ceil(100).max(1);
        let mut seen = 0;
        for (ms, &count) in self.rtt_ms.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_millis(ms as u64));
            }
        }
        None
    }

    fn bump(v: &mut Vec<u32>, at: Instant) {
        let sec = usize::try_from(at.as_micros() / 1_000_000).unwrap_or(usize::MAX);
        // Bounded: a world never runs past a few days of simulated time in practice, and the
        // counter stops growing past 10 days.
        if sec >= 864_000 {
            return;
        }
        if v.len() <= sec {
            v.resize(sec + 1, 0);
        }
        v[sec] += 1;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "events: {}", self.events)?;
        writeln!(
            f,
            "connection attempts: {}, accepted: {}",
            self.connects, self.accepts
        )?;
        writeln!(
            f,
            "client pings: {} sent, {} pongs read; server pings: {} sent; messages lost: {}",
            self.client_pings, self.client_pongs, self.server_pings, self.lost
        )?;
        writeln!(
            f,
            "pongs missed: {}; slow windows: {} ({} recovered); local stalls: {}",
            self.misses, self.slow, self.recovered, self.stalls
        )?;
        let [missed, closed, failed, timeout] = self.reconnects;
        writeln!(
            f,
            "reconnects: {} (missed_pongs {missed}, connection_closed {closed}, connect_failed {failed}, connect_timeout {timeout})",
            self.total_reconnects()
        )?;
        let [idle, flood] = self.server_closes;
        writeln!(
            f,
            "server closes: {} (idle_timeout {idle}, too_many_pings {flood})",
            self.total_server_closes()
        )?;
        write!(f, "rtt: {} samples", self.rtt_samples())?;
        if self.rtt_samples() > 0 {
            let p = |q| self.rtt_percentile(q).map(fmt_dur).unwrap_or_default();
            write!(
                f,
                ", p50 {}, p90 {}, p99 {}, max {}",
                p(50),
                p(90),
                p(99),
                p(100)
            )?;
        }
        writeln!(f)
    }
}

/// The socket as the client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sock {
    None,
    Connecting,
    Open,
}

/// One connection on the server side.
#[derive(Clone, Debug)]
struct Conn {
    server: Server,
    epoch: u32,
    timer_at: Instant,
    timer_gen: u32,
}

/// A client and everything the world knows about it.
#[derive(Clone, Debug)]
struct Node {
    client: Client,
    /// Id of the client's current socket; bumped on every connection attempt.
    epoch: u32,
    /// Highest epoch the client has closed.
    closed_epoch: u32,
    sock: Sock,
    status: Status,
    timer_at: Instant,
    timer_gen: u32,
    /// Server connections for this client: the current one and at most one older one that has
    /// not been closed yet.
    conns: [Option<Conn>; 2],
    /// Latest arrival scheduled in each direction, to keep order.
    last_up: u64,
    last_down: u64,
    asleep_until: Instant,
    throttle_until: Instant,
    throttle_period: u64,
}

/// A heartbeat message from its packed form in a queued event (kept flat so that an event
/// stays 24 bytes).
fn wire(seq: u64, pong: bool) -> Message {
    if pong {
        Message::Pong { seq }
    } else {
        Message::Ping { seq }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    Start {
        c: u32,
    },
    ClientTimer {
        c: u32,
        gen: u32,
    },
    ServerTimer {
        c: u32,
        epoch: u32,
        gen: u32,
    },
    ToServer {
        c: u32,
        epoch: u32,
        seq: u64,
        pong: bool,
    },
    ToClient {
        c: u32,
        epoch: u32,
        seq: u64,
        pong: bool,
    },
    /// The handshake reaches the server.
    Accept {
        c: u32,
        epoch: u32,
    },
    /// The handshake answer reaches the client.
    Connected {
        c: u32,
        epoch: u32,
    },
    /// The connection was refused or reset; the client learns it.
    Reset {
        c: u32,
        epoch: u32,
    },
    /// The client's close reaches the server.
    ClientClose {
        c: u32,
        epoch: u32,
    },
    /// The server's close reaches the client.
    ServerClose {
        c: u32,
        epoch: u32,
    },
    /// A delayed write by the server (an overloaded handler's pong).
    ServerWrite {
        c: u32,
        epoch: u32,
        seq: u64,
        pong: bool,
    },
    Fault {
        index: u32,
    },
}

/// The server process's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Process {
    Up,
    /// Exited; the host answers connection attempts with a reset.
    Crashed,
    /// The host is gone: silence.
    HostDown,
}

/// The world. Build it with [`World::new`], schedule faults with [`World::schedule`], run it
/// with [`World::run_until`], then read [`World::stats`] and [`World::trace`].
#[derive(Debug)]
pub struct World {
    setup: Setup,
    rng: Rng,
    now: u64,
    heap: EventQueue<Ev>,
    nodes: Vec<Node>,
    faults: Vec<Fault>,
    process: Process,
    busy_until: u64,
    frozen_until: u64,
    partition_until: u64,
    stats: Stats,
    trace: Trace,
}

/// Why [`World::run_until`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The requested time was reached.
    Time,
    /// Nothing is left to happen (every client closed).
    Idle,
    /// `Setup::max_events` was reached.
    EventBudget,
}

impl World {
    /// A world at time zero with every client about to connect.
    ///
    /// # Errors
    /// The client's or the server's own configuration rules (the pair need not be valid).
    pub fn new(setup: Setup) -> Result<World, ConfigErrors> {
        // Validate the server side once, up front, so accepting never fails later.
        Server::new(&setup.config.server, Instant::ZERO)?;
        let mut rng = Rng::new(setup.seed);
        let shared_seed = rng.next_u64();
        let mut nodes = Vec::with_capacity(setup.clients as usize);
        let mut heap = EventQueue::new();
        for c in 0..setup.clients {
            let seed = if setup.same_client_seed {
                shared_seed
            } else {
                rng.next_u64()
            };
            // The client is created when it starts: its connect deadline runs from then.
            let at = rng.range(0, us(setup.start_spread));
            let client = Client::new(&setup.config.client, Instant::from_micros(at), seed)?;
            nodes.push(Node {
                client,
                epoch: 0,
                closed_epoch: 0,
                sock: Sock::None,
                status: Status::Connecting,
                timer_at: Instant::MAX,
                timer_gen: 0,
                conns: [None, None],
                last_up: 0,
                last_down: 0,
                asleep_until: Instant::ZERO,
                throttle_until: Instant::ZERO,
                throttle_period: 0,
            });
            heap.push(at, Ev::Start { c });
        }
        Ok(World {
            rng,
            now: 0,
            heap,
            nodes,
            faults: Vec::new(),
            process: Process::Up,
            busy_until: 0,
            frozen_until: 0,
            partition_until: 0,
            stats: Stats {
                rtt_ms: vec![0; RTT_BUCKETS],
                ..Stats::default()
            },
            trace: Trace::new(),
            setup,
        })
    }

    /// Schedules a fault (or note) at `at`.
    pub fn schedule(&mut self, at: Instant, fault: Fault) {
        let index = u32::try_from(self.faults.len()).unwrap_or(u32::MAX);
        self.faults.push(fault);
        self.push(at.as_micros(), Ev::Fault { index });
    }

    /// Runs every event up to and including `end`, then sets the clock to `end`.
    pub fn run_until(&mut self, end: Instant) -> Stop {
        let end = end.as_micros();
        while let Some(at) = self.heap.peek_time() {
            if at > end {
                break;
            }
            if self.stats.events >= self.setup.max_events {
                return Stop::EventBudget;
            }
            let Some((at, ev)) = self.heap.pop() else {
                break;
            };
            self.now = self.now.max(at);
            self.dispatch(ev);
        }
        if self.heap.is_empty() && self.now < end {
            self.now = end;
            return Stop::Idle;
        }
        self.now = self.now.max(end);
        Stop::Time
    }

    /// The world's clock.
    #[must_use]
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.now)
    }

    /// Events scheduled so far (including timers superseded before they fired).
    #[must_use]
    pub fn scheduled(&self) -> u64 {
        self.heap.pushed()
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The trace so far.
    #[must_use]
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The trace, giving up the world.
    #[must_use]
    pub fn into_trace(self) -> Trace {
        self.trace
    }

    /// Client `n`'s state machine, read-only.
    #[must_use]
    pub fn client(&self, n: u32) -> Option<&Client> {
        self.nodes.get(n as usize).map(|node| &node.client)
    }

    /// The setup this world was built from.
    #[must_use]
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// Changes what the trace records from now on.
    pub fn set_trace_mode(&mut self, mode: TraceMode) {
        self.setup.trace = mode;
    }

    /// Sets the trace's title.
    pub fn set_title(&mut self, title: impl Into<String>) {
        self.trace.title = title.into();
    }

    /// Adds a world note to the trace now (when tracing).
    pub fn note(&mut self, text: impl Into<Cow<'static, str>>) {
        if self.setup.trace != TraceMode::Off {
            let at = self.now();
            self.trace.note(at, Who::World, text);
        }
    }

    // ---- internals ----

    fn push(&mut self, at: u64, ev: Ev) {
        self.heap.push(at, ev);
    }

    #[inline]
    fn traced(&self, c: u32) -> bool {
        match self.setup.trace {
            TraceMode::Off => false,
            TraceMode::All => true,
            TraceMode::Client(n) => n == c,
        }
    }

    #[inline]
    fn rec(&mut self, c: u32, who: Who, what: What) {
        if self.traced(c) {
            let at = self.now();
            self.trace.push(at, who, what);
        }
    }

    fn world_note(&mut self, text: impl Into<Cow<'static, str>>) {
        self.note(text);
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Start { c } => {
                self.stats.events += 1;
                self.drain_client(c);
            }
            Ev::ClientTimer { c, gen } => self.client_timer(c, gen),
            Ev::ServerTimer { c, epoch, gen } => self.server_timer(c, epoch, gen),
            Ev::ToServer {
                c,
                epoch,
                seq,
                pong,
            } => self.deliver_up(c, epoch, wire(seq, pong)),
            Ev::ToClient {
                c,
                epoch,
                seq,
                pong,
            } => self.deliver_down(c, epoch, wire(seq, pong)),
            Ev::Accept { c, epoch } => self.accept(c, epoch),
            Ev::Connected { c, epoch } => {
                let now = self.now();
                let node = &mut self.nodes[c as usize];
                if node.epoch != epoch || node.sock != Sock::Connecting {
                    return; // the client gave this attempt up meanwhile
                }
                if node.asleep_until > now {
                    let at = node.asleep_until.as_micros();
                    self.push(at, ev);
                    return;
                }
                self.stats.events += 1;
                node.sock = Sock::Open;
                node.client.handle_connected(now);
                self.rec(c, Who::Client(c), What::Open);
                self.drain_client(c);
            }
            Ev::Reset { c, epoch } | Ev::ServerClose { c, epoch } => {
                let now = self.now();
                let node = &mut self.nodes[c as usize];
                if node.epoch != epoch || node.sock == Sock::None {
                    return;
                }
                if node.asleep_until > now {
                    return; // its network is down: the close never arrives
                }
                self.stats.events += 1;
                node.sock = Sock::None;
                node.client.handle_disconnected(now);
                let text = if matches!(ev, Ev::Reset { .. }) {
                    "connection refused or reset by the server host"
                } else {
                    "close frame from the server"
                };
                self.rec(c, Who::Client(c), What::note(text));
                self.rec(c, Who::Client(c), What::Closed);
                self.drain_client(c);
            }
            Ev::ClientClose { c, epoch } => {
                if self.process != Process::Up {
                    return;
                }
                self.stats.events += 1;
                if let Some(k) = self.conn_index(c, epoch) {
                    self.nodes[c as usize].conns[k] = None;
                    self.rec(c, Who::Server(c), What::Closed);
                }
            }
            Ev::ServerWrite {
                c,
                epoch,
                seq,
                pong,
            } => {
                if self.frozen_until > self.now {
                    self.push(self.frozen_until, ev);
                    return;
                }
                if self.process == Process::Up && self.conn_index(c, epoch).is_some() {
                    self.stats.events += 1;
                    self.server_write(c, epoch, wire(seq, pong));
                }
            }
            Ev::Fault { index } => {
                self.stats.events += 1;
                if let Some(f) = self.faults.get(index as usize).cloned() {
                    self.fault(f);
                }
            }
        }
    }

    fn conn_index(&self, c: u32, epoch: u32) -> Option<usize> {
        self.nodes[c as usize]
            .conns
            .iter()
            .position(|k| k.as_ref().is_some_and(|k| k.epoch == epoch))
    }

    fn fault(&mut self, f: Fault) {
        let now = self.now;
        match f {
            Fault::ServerBusy(d) => {
                self.busy_until = self.busy_until.max(now.saturating_add(us(d)));
                self.world_note(format!(
                    "server overloaded for {}: its pongs wait, its pings stay on schedule",
                    fmt_dur(d)
                ));
            }
            Fault::ServerFrozen(d) => {
                self.frozen_until = self.frozen_until.max(now.saturating_add(us(d)));
                self.world_note(format!(
                    "server event loop blocked for {}: no pong, no ping, nothing",
                    fmt_dur(d)
                ));
            }
            Fault::ServerCrash | Fault::ServerHostDown => {
                let crash = matches!(f, Fault::ServerCrash);
                self.process = if crash {
                    Process::Crashed
                } else {
                    Process::HostDown
                };
                self.world_note(if crash {
                    "server process exits: every connection is reset"
                } else {
                    "server host gone: connections fall silent"
                });
                for c in 0..self.nodes.len() as u32 {
                    for k in 0..2 {
                        let Some(conn) = self.nodes[c as usize].conns[k].take() else {
                            continue;
                        };
                        self.rec(c, Who::Server(c), What::Closed);
                        if crash {
                            self.send_down(
                                c,
                                Ev::Reset {
                                    c,
                                    epoch: conn.epoch,
                                },
                            );
                        }
                    }
                }
            }
            Fault::ServerRestart => {
                self.process = Process::Up;
                self.world_note("server up again, accepting connections");
            }
            Fault::Partition(d) => {
                self.partition_until = self.partition_until.max(now.saturating_add(us(d)));
                self.world_note(format!(
                    "network partitioned for {}: everything is lost",
                    fmt_dur(d)
                ));
            }
            Fault::ClientThrottled {
                client,
                period,
                duration,
            } => {
                if let Some(node) = self.nodes.get_mut(client as usize) {
                    node.throttle_until = Instant::from_micros(now.saturating_add(us(duration)));
                    node.throttle_period = us(period).max(1);
                    self.rec(
                        client,
                        Who::World,
                        What::note(format!(
                            "client {client} throttled: timers fire at most once per {} for {}",
                            fmt_dur(period),
                            fmt_dur(duration)
                        )),
                    );
                }
            }
            Fault::ClientAsleep { client, duration } => {
                if let Some(node) = self.nodes.get_mut(client as usize) {
                    node.asleep_until = Instant::from_micros(now.saturating_add(us(duration)));
                    self.rec(
                        client,
                        Who::World,
                        What::note(format!(
                            "client {client} machine asleep for {}: no timers, no network",
                            fmt_dur(duration)
                        )),
                    );
                }
            }
            Fault::Hint { client, hint } => {
                if (client as usize) < self.nodes.len() {
                    let t = self.now();
                    self.nodes[client as usize].client.handle_hint(t, hint);
                    self.rec(client, Who::Client(client), What::Hint(hint));
                    self.drain_client(client);
                }
            }
            Fault::Note(text) => self.world_note(text),
        }
    }

    /// Samples a one-way delay, `None` if the message is lost.
    fn wire(&mut self, up: bool, c: u32) -> Option<u64> {
        let now = self.now;
        if now < self.partition_until || self.rng.chance(self.setup.network.loss_ppm) {
            self.stats.lost += 1;
            return None;
        }
        let delay = self.setup.network.latency.sample(&mut self.rng);
        let mut at = now.saturating_add(delay);
        if !self.setup.network.reorder {
            let node = &mut self.nodes[c as usize];
            let last = if up {
                &mut node.last_up
            } else {
                &mut node.last_down
            };
            at = at.max(*last);
            *last = at;
        }
        Some(at)
    }

    fn send_up(&mut self, c: u32, ev: Ev) {
        if let Some(at) = self.wire(true, c) {
            self.push(at, ev);
            // Only heartbeats are duplicated: a handshake or close is not a message.
            if matches!(ev, Ev::ToServer { .. } | Ev::ToClient { .. })
                && self.rng.chance(self.setup.network.duplicate_ppm)
            {
                let extra = self.setup.network.latency.sample(&mut self.rng);
                self.push(at.saturating_add(extra), ev);
            }
        }
    }

    fn send_down(&mut self, c: u32, ev: Ev) {
        if let Some(at) = self.wire(false, c) {
            self.push(at, ev);
            // Only heartbeats are duplicated: a handshake or close is not a message.
            if matches!(ev, Ev::ToServer { .. } | Ev::ToClient { .. })
                && self.rng.chance(self.setup.network.duplicate_ppm)
            {
                let extra = self.setup.network.latency.sample(&mut self.rng);
                self.push(at.saturating_add(extra), ev);
            }
        }
    }

    fn drain_client(&mut self, c: u32) {
        let now = self.now();
        let ci = c as usize;
        while let Some(msg) = self.nodes[ci].client.poll_transmit() {
            if matches!(msg, Message::Ping { .. }) {
                self.stats.client_pings += 1;
            }
            self.rec(c, Who::Client(c), What::Send(msg));
            let epoch = self.nodes[ci].epoch;
            if self.nodes[ci].sock == Sock::Open && self.wire_ok_or_lost(c, msg) {
                self.send_up(
                    c,
                    Ev::ToServer {
                        c,
                        epoch,
                        seq: msg.seq(),
                        pong: matches!(msg, Message::Pong { .. }),
                    },
                );
            }
        }
        while let Some(ev) = self.nodes[ci].client.poll_event() {
            self.rec(c, Who::Client(c), What::Event(ev));
            match ev {
                Event::Connect { .. } => {
                    self.stats.connects += 1;
                    Stats::bump(&mut self.stats.connects_per_sec, now);
                    let node = &mut self.nodes[ci];
                    node.epoch = node.epoch.wrapping_add(1);
                    node.sock = Sock::Connecting;
                    let epoch = node.epoch;
                    match self.process {
                        Process::HostDown => {}
                        Process::Up | Process::Crashed => {
                            self.send_up(c, Ev::Accept { c, epoch });
                        }
                    }
                }
                Event::Reconnect { reason, .. } => {
                    let k = match reason {
                        ReconnectReason::MissedPongs { .. } => 0,
                        ReconnectReason::ConnectionClosed => 1,
                        ReconnectReason::ConnectFailed => 2,
                        ReconnectReason::ConnectTimeout => 3,
                    };
                    self.stats.reconnects[k] += 1;
                    let node = &mut self.nodes[ci];
                    let had_socket = node.sock != Sock::None;
                    node.sock = Sock::None;
                    node.closed_epoch = node.epoch;
                    let epoch = node.epoch;
                    if had_socket && self.process != Process::HostDown {
                        self.send_up(c, Ev::ClientClose { c, epoch });
                    }
                }
                Event::PongMissed { .. } => self.stats.misses += 1,
                Event::Slow { .. } => self.stats.slow += 1,
                Event::Recovered { .. } => self.stats.recovered += 1,
                Event::Stalled { .. } => self.stats.stalls += 1,
                Event::Rtt(d) => {
                    let ms = usize::try_from(d.as_millis())
                        .unwrap_or(usize::MAX)
                        .min(RTT_BUCKETS - 1);
                    self.stats.rtt_ms[ms] += 1;
                }
                Event::Connected => {}
            }
        }
        let status = self.nodes[ci].client.status();
        if status != self.nodes[ci].status {
            self.nodes[ci].status = status;
            self.rec(c, Who::Client(c), What::Status(status));
        }
        let node = &mut self.nodes[ci];
        let deadline = node.client.poll_timeout().unwrap_or(Instant::MAX);
        if deadline != node.timer_at {
            node.timer_at = deadline;
            node.timer_gen = node.timer_gen.wrapping_add(1);
            if deadline != Instant::MAX {
                let gen = node.timer_gen;
                let jitter = self.setup.timer_jitter;
                let late = if jitter.is_zero() {
                    0
                } else {
                    self.rng.range(0, us(jitter))
                };
                let at = deadline.as_micros().max(self.now).saturating_add(late);
                self.push(at, Ev::ClientTimer { c, gen });
            }
        }
    }

    /// Records a loss when the network would drop a message regardless of sampling (asleep
    /// client). Returns false when the message must not be sent.
    fn wire_ok_or_lost(&mut self, c: u32, msg: Message) -> bool {
        if self.nodes[c as usize].asleep_until > self.now() {
            self.stats.lost += 1;
            self.rec(c, Who::Client(c), What::Lost(msg));
            return false;
        }
        if self.now < self.partition_until {
            self.stats.lost += 1;
            self.rec(c, Who::Client(c), What::Lost(msg));
            return false;
        }
        true
    }

    fn client_timer(&mut self, c: u32, gen: u32) {
        let now = self.now();
        let node = &mut self.nodes[c as usize];
        if node.timer_gen != gen {
            return; // superseded
        }
        if node.asleep_until > now {
            let at = node.asleep_until.as_micros();
            self.push(at, Ev::ClientTimer { c, gen });
            return;
        }
        if node.throttle_until > now {
            let p = node.throttle_period;
            let aligned = now.as_micros().div_ceil(p).saturating_mul(p);
            if aligned > now.as_micros() {
                self.push(aligned, Ev::ClientTimer { c, gen });
                return;
            }
        }
        self.stats.events += 1;
        let late = now.saturating_duration_since(node.timer_at);
        node.timer_at = Instant::MAX; // fired; the next poll_timeout reschedules
        node.client.handle_timeout(now);
        if late >= Duration::from_secs(1) && self.traced(c) {
            self.rec(
                c,
                Who::Client(c),
                What::note(format!("timer fired {} late", fmt_dur(late))),
            );
        }
        self.drain_client(c);
    }

    fn accept(&mut self, c: u32, epoch: u32) {
        let now = self.now;
        if self.frozen_until > now {
            self.push(self.frozen_until, Ev::Accept { c, epoch });
            return;
        }
        self.stats.events += 1;
        match self.process {
            Process::HostDown => return,
            Process::Crashed => {
                self.send_down(c, Ev::Reset { c, epoch });
                return;
            }
            Process::Up => {}
        }
        if self.nodes[c as usize].closed_epoch >= epoch || self.conn_index(c, epoch).is_some() {
            return; // the client already gave this attempt up, or it is already accepted
        }
        let t = self.now();
        let Ok(server) = Server::new(&self.setup.config.server, t) else {
            return; // validated in World::new
        };
        self.stats.accepts += 1;
        Stats::bump(&mut self.stats.accepts_per_sec, t);
        let node = &mut self.nodes[c as usize];
        let conn = Conn {
            server,
            epoch,
            timer_at: Instant::MAX,
            timer_gen: 0,
        };
        // Keep the newest older connection too: it lives until it is closed or times out.
        let slot = if node.conns[0].is_none() {
            0
        } else if node.conns[1].is_none() {
            1
        } else {
            let k = usize::from(
                node.conns[1].as_ref().map(|k| k.epoch) < node.conns[0].as_ref().map(|k| k.epoch),
            );
            node.conns[k] = None;
            k
        };
        node.conns[slot] = Some(conn);
        self.rec(c, Who::Server(c), What::Open);
        self.drain_server(c, slot);
        self.send_down(c, Ev::Connected { c, epoch });
    }

    fn server_timer(&mut self, c: u32, epoch: u32, gen: u32) {
        let Some(k) = self.conn_index(c, epoch) else {
            return;
        };
        let now = self.now;
        let Some(conn) = self.nodes[c as usize].conns[k].as_mut() else {
            return;
        };
        if conn.timer_gen != gen {
            return;
        }
        if self.frozen_until > now {
            self.push(self.frozen_until, Ev::ServerTimer { c, epoch, gen });
            return;
        }
        self.stats.events += 1;
        conn.timer_at = Instant::MAX;
        conn.server.handle_timeout(Instant::from_micros(now));
        self.drain_server(c, k);
    }

    fn deliver_up(&mut self, c: u32, epoch: u32, msg: Message) {
        let now = self.now;
        match self.process {
            Process::HostDown => {
                self.stats.lost += 1;
                self.rec(c, Who::Client(c), What::Lost(msg));
                return;
            }
            Process::Crashed => {
                self.stats.events += 1;
                self.send_down(c, Ev::Reset { c, epoch });
                return;
            }
            Process::Up => {}
        }
        let hold = self.frozen_until;
        if hold > now {
            self.push(
                hold,
                Ev::ToServer {
                    c,
                    epoch,
                    seq: msg.seq(),
                    pong: matches!(msg, Message::Pong { .. }),
                },
            );
            return;
        }
        self.stats.events += 1;
        let Some(k) = self.conn_index(c, epoch) else {
            // The server no longer knows this socket: its host answers with a reset.
            if self.nodes[c as usize].epoch == epoch {
                self.rec(
                    c,
                    Who::Server(c),
                    What::note("message on a closed connection: reset"),
                );
                self.send_down(c, Ev::Reset { c, epoch });
            }
            return;
        };
        self.rec(c, Who::Server(c), What::Receive(msg));
        if let Some(conn) = self.nodes[c as usize].conns[k].as_mut() {
            conn.server.handle_message(Instant::from_micros(now), msg);
        }
        self.drain_server(c, k);
    }

    fn drain_server(&mut self, c: u32, k: usize) {
        let ci = c as usize;
        let Some(epoch) = self.nodes[ci].conns[k].as_ref().map(|k| k.epoch) else {
            return;
        };
        while let Some(msg) = self.nodes[ci].conns[k]
            .as_mut()
            .and_then(|k| k.server.poll_transmit())
        {
            if let Message::Pong { .. } = msg {
                // Written by the (possibly overloaded) handler, not by the ping timer: it lags
                // by the handler's delay.
                let handler = self.setup.server_delay.sample(&mut self.rng);
                let ready = self.now.max(self.busy_until).saturating_add(handler);
                if ready > self.now {
                    self.push(
                        ready,
                        Ev::ServerWrite {
                            c,
                            epoch,
                            seq: msg.seq(),
                            pong: matches!(msg, Message::Pong { .. }),
                        },
                    );
                    continue;
                }
            }
            self.server_write(c, epoch, msg);
        }
        let mut closed = false;
        while let Some(ev) = self.nodes[ci].conns[k]
            .as_mut()
            .and_then(|k| k.server.poll_event())
        {
            self.rec(c, Who::Server(c), What::ServerEvent(ev));
            if let ServerEvent::Close(reason) = ev {
                self.stats.server_closes[match reason {
                    CloseReason::IdleTimeout => 0,
                    CloseReason::TooManyPings => 1,
                }] += 1;
                closed = true;
            }
        }
        if closed {
            self.nodes[ci].conns[k] = None;
            self.rec(c, Who::Server(c), What::Closed);
            if self.nodes[ci].asleep_until <= self.now() {
                self.send_down(c, Ev::ServerClose { c, epoch });
            }
            return;
        }
        let Some(conn) = self.nodes[ci].conns[k].as_mut() else {
            return;
        };
        let deadline = conn.server.poll_timeout().unwrap_or(Instant::MAX);
        if deadline != conn.timer_at {
            conn.timer_at = deadline;
            conn.timer_gen = conn.timer_gen.wrapping_add(1);
            if deadline != Instant::MAX {
                let gen = conn.timer_gen;
                let at = deadline.as_micros().max(self.now);
                self.push(at, Ev::ServerTimer { c, epoch, gen });
            }
        }
    }

    /// The server writes `msg` on connection `epoch` now.
    fn server_write(&mut self, c: u32, epoch: u32, msg: Message) {
        if matches!(msg, Message::Ping { .. }) {
            self.stats.server_pings += 1;
        }
        self.rec(c, Who::Server(c), What::Send(msg));
        if self.nodes[c as usize].asleep_until > self.now() || self.now < self.partition_until {
            self.stats.lost += 1;
            self.rec(c, Who::Server(c), What::Lost(msg));
            return;
        }
        self.send_down(
            c,
            Ev::ToClient {
                c,
                epoch,
                seq: msg.seq(),
                pong: matches!(msg, Message::Pong { .. }),
            },
        );
    }

    fn deliver_down(&mut self, c: u32, epoch: u32, msg: Message) {
        let now = self.now();
        let node = &mut self.nodes[c as usize];
        if node.epoch != epoch || node.sock != Sock::Open {
            return; // an old socket
        }
        if node.asleep_until > now {
            self.stats.lost += 1;
            self.rec(c, Who::Server(c), What::Lost(msg));
            return;
        }
        self.stats.events += 1;
        if matches!(msg, Message::Pong { .. }) {
            self.stats.client_pongs += 1;
        }
        node.client.handle_message(now, msg);
        self.rec(c, Who::Client(c), What::Receive(msg));
        self.drain_client(c);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn queued_events_stay_small() {
        assert!(std::mem::size_of::<super::Ev>() <= 24);
    }
}
