//! The exhaustive search behind `heartbeat check`: a level-synchronous breadth-first search over
//! any stateright [`Model`] whose actions include the passing of time.
//!
//! Why not stateright's own checker (which the Explorer still uses): a proof needs four things
//! its BFS checker does not give, and each is a line of this module.
//!
//! - **Honest completeness.** The budget counts *unique* states; the run is complete only when
//!   every state discovered was expanded. Any limit (states, time, memory) ends the run as
//!   [`Stop::Limit`], never as a success.
//! - **Shortest counterexamples.** Properties are evaluated on each state when it is first
//!   discovered, and a discovery is never overwritten. Level by level, every state at depth `d`
//!   is discovered before any at `d + 1`, so the first state found to break (or witness) a
//!   property is one of least depth.
//! - **Time-locks.** The successor graph is kept (as indices), and after a complete run a
//!   backward pass marks every state from which some path reaches a step that lets time pass
//!   (or a designed ending). Any other state is time-locked: a model error, reported with the
//!   shortest path to it.
//! - **Undecided is undecided.** A property is only decided when the run decides it; the caller
//!   learns which run ended how ([`Stop`]).
//!
//! States are stored as 128-bit fingerprints (SipHash-1-3 with fixed keys) plus their parent,
//! not whole: two different states share a fingerprint with probability about n² / 2¹²⁹
//! (below 10⁻²⁴ for 20 million states). Paths are rebuilt by replaying from the initial state.

use std::hash::Hash;
use std::time::{Duration, Instant as WallInstant};

use hashbrown::HashTable;
use siphasher::sip128::{Hasher128 as _, SipHasher13};
use stateright::{Expectation, Model};

/// What the search needs to know about time in a model.
pub trait Timed: Model {
    /// True for the action that lets time pass.
    fn lets_time_pass(&self, action: &Self::Action) -> bool;
    /// A state where the model stops by design (not a time-lock).
    fn is_ending(&self, state: &Self::State) -> bool;
    /// Heap bytes a state owns, for the memory limit (its inline size is counted already).
    fn heap_bytes(&self, _state: &Self::State) -> usize {
        0
    }
}

/// The limits of one search. Reaching any of them ends the search as inconclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Unique states.
    pub max_states: usize,
    /// Wall time.
    pub max_time: Option<Duration>,
    /// Bytes: the search's own tables and frontier, or the process's resident memory, whichever
    /// is larger.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_states: 20_000_000,
            max_time: None,
            max_bytes: 2 << 30,
        }
    }
}

/// A limit that ended a search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// More unique states than [`Limits::max_states`].
    States(usize),
    /// Longer than [`Limits::max_time`].
    Time(Duration),
    /// More bytes than [`Limits::max_bytes`].
    Memory(usize),
}

/// How a search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every reachable state was expanded.
    Complete,
    /// Stopped at the first failing `always` property, as asked.
    Failure,
    /// Stopped once every target property had a discovery, as asked
    /// ([`SearchOptions::until_found`]).
    Found,
    /// A limit was reached first.
    Limit(Limit),
}

/// Options of one search.
#[derive(Clone, Copy, Debug, Default)]
pub struct SearchOptions {
    /// Stop at the first `always` property that fails.
    pub stop_at_first_failure: bool,
    /// The limits.
    pub limits: Limits,
    /// Called about once a second with the unique states so far and the time taken.
    pub progress: Option<fn(usize, Duration)>,
    /// Properties (bit `i` for the `i`-th of `Model::properties()`) whose discovery ends the
    /// search: once every one of them has one, the search stops with [`Stop::Found`]. Zero:
    /// no such stop.
    pub until_found: u64,
}

/// What a search found.
#[derive(Clone, Debug)]
pub struct Found<A> {
    /// How it ended.
    pub stop: Stop,
    /// Unique states discovered.
    pub states: usize,
    /// The depth of the deepest state discovered (actions from the initial state).
    pub depth: usize,
    /// Per property, in `Model::properties()` order: the shortest path to the first state that
    /// breaks it (`always`) or satisfies it (`sometimes`).
    pub discoveries: Vec<Option<Vec<A>>>,
    /// `Some` after a complete run: the shortest path to a time-locked state, if any.
    pub time_lock: Option<Option<Vec<A>>>,
    /// After a complete run: states where time passes and nothing changes (no timer set,
    /// nothing in flight). They are not time-locked; they wait for nothing.
    pub idle_states: usize,
    /// The most bytes the search held at once (tables and frontier; an estimate from
    /// capacities, the same on every run).
    pub peak_bytes: usize,
    /// Wall time.
    pub elapsed: Duration,
}

type Fingerprint = [u64; 2];

fn fingerprint<T: Hash>(value: &T) -> Fingerprint {
    let mut h = SipHasher13::new_with_keys(0x6865_6172_7462_6561, 0x742d_6368_6563_6b21);
    value.hash(&mut h);
    let h = h.finish128();
    [h.h1, h.h2]
}

const NONE: u32 = u32::MAX;

/// The visited set and the successor graph, by state index.
struct Graph {
    table: HashTable<u32>,
    fingerprints: Vec<Fingerprint>,
    parents: Vec<u32>,
    /// `edges[edge_start[i]..edge_start[i + 1]]` are state `i`'s successors.
    edge_start: Vec<usize>,
    edges: Vec<u32>,
    /// State `i` lets time pass (or is an ending); set while expanding.
    progress: Vec<bool>,
    /// State `i`'s time step leads back to itself.
    idle: Vec<bool>,
}

/// A field of `/proc/self/status` in bytes (Linux; `None` elsewhere).
fn proc_status(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The process's resident memory now, where the system tells it.
#[must_use]
pub fn resident_bytes() -> Option<usize> {
    proc_status("VmRSS:")
}

/// The most resident memory the process has held, where the system tells it.
#[must_use]
pub fn peak_resident_bytes() -> Option<usize> {
    proc_status("VmHWM:")
}

impl Graph {
    fn bytes(&self) -> usize {
        // A hash table keeps its buckets at most 7/8 full, each an index and a control byte.
        self.table.capacity() * 8 / 7 * (size_of::<u32>() + 1)
            + self.fingerprints.capacity() * size_of::<Fingerprint>()
            + self.parents.capacity() * size_of::<u32>()
            + self.edge_start.capacity() * size_of::<usize>()
            + self.edges.capacity() * size_of::<u32>()
            + self.progress.capacity()
            + self.idle.capacity()
    }

    /// The index of `fp`, inserting it (with `parent`) when new. `Err` when the state is new and
    /// the table is full.
    fn insert(&mut self, fp: Fingerprint, parent: u32, max: usize) -> Result<(u32, bool), ()> {
        let fps = &self.fingerprints;
        if let Some(&i) = self.table.find(fp[0], |&i| fps[i as usize] == fp) {
            return Ok((i, false));
        }
        if self.fingerprints.len() >= max || self.fingerprints.len() >= NONE as usize {
            return Err(());
        }
        let i = self.fingerprints.len() as u32;
        let fps = &self.fingerprints;
        self.table.insert_unique(fp[0], i, |&j| fps[j as usize][0]);
        self.fingerprints.push(fp);
        self.parents.push(parent);
        Ok((i, true))
    }

    fn path_to(&self, mut i: u32) -> Vec<u32> {
        let mut path = vec![i];
        while self.parents[i as usize] != NONE {
            i = self.parents[i as usize];
            path.push(i);
        }
        path.reverse();
        path
    }

    /// Marks every state from which a path reaches a state that lets time pass; returns the
    /// first (lowest index, so least depth) state that cannot.
    fn first_time_lock(&self) -> Option<u32> {
        let n = self.fingerprints.len();
        // Reverse edges, by counting sort.
        let mut rev_start = vec![0usize; n + 1];
        for &t in &self.edges {
            rev_start[t as usize + 1] += 1;
        }
        for i in 0..n {
            rev_start[i + 1] += rev_start[i];
        }
        let mut fill = rev_start.clone();
        let mut rev = vec![0u32; self.edges.len()];
        for s in 0..n {
            for &t in &self.edges[self.edge_start[s]..self.edge_start[s + 1]] {
                rev[fill[t as usize]] = s as u32;
                fill[t as usize] += 1;
            }
        }
        let mut good = self.progress.clone();
        let mut work: Vec<u32> = (0..n as u32).filter(|&i| good[i as usize]).collect();
        while let Some(t) = work.pop() {
            for &s in &rev[rev_start[t as usize]..rev_start[t as usize + 1]] {
                if !good[s as usize] {
                    good[s as usize] = true;
                    work.push(s);
                }
            }
        }
        good.iter().position(|g| !g).map(|i| i as u32)
    }
}

/// Searches `model` breadth-first, level by level. `next_state` returning `None` means the
/// action leaves the state as it is (stateright's meaning); `within_boundary` is not consulted
/// and `eventually` properties are not evaluated (no model here uses them).
pub fn search<M>(model: &M, options: SearchOptions) -> Found<M::Action>
where
    M: Timed,
    M::State: Hash,
    M::Action: Clone,
{
    let started = WallInstant::now();
    let limits = options.limits;
    let properties = model.properties();
    let mut discoveries: Vec<Option<u32>> = vec![None; properties.len()];
    let mut graph = Graph {
        table: HashTable::new(),
        fingerprints: Vec::new(),
        parents: Vec::new(),
        edge_start: vec![0],
        edges: Vec::new(),
        progress: Vec::new(),
        idle: Vec::new(),
    };
    let state_bytes = size_of::<(u32, M::State)>();
    let mut peak = 0usize;
    let mut stop = None;
    let mut failed = false;

    // Evaluates every undecided property on a newly discovered state.
    let observe = |i: u32, state: &M::State, discoveries: &mut Vec<Option<u32>>| -> bool {
        let mut any_failure = false;
        for (p, found) in properties.iter().zip(discoveries.iter_mut()) {
            if found.is_some() {
                continue;
            }
            let holds = (p.condition)(model, state);
            let hit = match p.expectation {
                Expectation::Always => !holds,
                Expectation::Sometimes => holds,
                // Not used by our models; a liveness property would need a different search.
                Expectation::Eventually => false,
            };
            if hit {
                *found = Some(i);
                any_failure |= p.expectation == Expectation::Always;
            }
        }
        any_failure
    };

    let mut level: Vec<(u32, M::State)> = Vec::new();
    for s in model.init_states() {
        match graph.insert(fingerprint(&s), NONE, limits.max_states) {
            Ok((i, true)) => {
                failed |= observe(i, &s, &mut discoveries);
                level.push((i, s));
            }
            Ok((_, false)) => {}
            Err(()) => {
                stop = Some(Stop::Limit(Limit::States(limits.max_states)));
                break;
            }
        }
    }
    if failed && options.stop_at_first_failure {
        stop = Some(Stop::Failure);
    }
    let mut depth = 0;
    let mut next: Vec<(u32, M::State)> = Vec::new();
    let mut actions = Vec::new();
    let mut last_progress = WallInstant::now();
    let mut expanded = 0usize;
    let targets_found = |discoveries: &[Option<u32>]| {
        options.until_found != 0
            && discoveries
                .iter()
                .enumerate()
                .all(|(k, d)| d.is_some() || k >= 64 || options.until_found & (1 << k) == 0)
    };
    if stop.is_none() && targets_found(&discoveries) {
        stop = Some(Stop::Found);
    }
    'levels: while stop.is_none() && !level.is_empty() {
        let level_len = level.len();
        for (done, (i, state)) in level.drain(..).enumerate() {
            debug_assert_eq!(i as usize, graph.edge_start.len() - 1);
            expanded += 1;
            if expanded % 1024 == 0 {
                let frontier: usize = (next.len() + level_len - done) * state_bytes
                    + next.iter().map(|(_, s)| model.heap_bytes(s)).sum::<usize>();
                let bytes = graph.bytes() + frontier;
                peak = peak.max(bytes);
                // The estimate leaves out the allocator's own overhead: every so often the
                // process's resident memory is asked too, and the larger counts.
                let resident = if expanded % (1 << 14) == 0 {
                    resident_bytes().unwrap_or(0)
                } else {
                    0
                };
                if bytes.max(resident) > limits.max_bytes {
                    stop = Some(Stop::Limit(Limit::Memory(limits.max_bytes)));
                    break 'levels;
                }
                let elapsed = started.elapsed();
                if limits.max_time.is_some_and(|t| elapsed > t) {
                    stop = Some(Stop::Limit(Limit::Time(
                        limits.max_time.unwrap_or_default(),
                    )));
                    break 'levels;
                }
                if let Some(report) = options.progress {
                    if last_progress.elapsed() >= Duration::from_secs(1) {
                        report(graph.fingerprints.len(), elapsed);
                        last_progress = WallInstant::now();
                    }
                }
            }
            let ending = model.is_ending(&state);
            let mut lets_time_pass = ending;
            let mut idle = false;
            actions.clear();
            model.actions(&state, &mut actions);
            for action in actions.drain(..) {
                let Some(succ) = model.next_state(&state, action.clone()) else {
                    // The action leaves the state as it is.
                    if model.lets_time_pass(&action) {
                        lets_time_pass = true;
                        idle = true;
                    }
                    graph.edges.push(i);
                    continue;
                };
                let fp = fingerprint(&succ);
                let (j, new) = match graph.insert(fp, i, limits.max_states) {
                    Ok(found) => found,
                    Err(()) => {
                        stop = Some(Stop::Limit(Limit::States(limits.max_states)));
                        break 'levels;
                    }
                };
                if model.lets_time_pass(&action) {
                    lets_time_pass = true;
                    idle |= j == i;
                }
                graph.edges.push(j);
                if new {
                    failed |= observe(j, &succ, &mut discoveries);
                    next.push((j, succ));
                    if failed && options.stop_at_first_failure {
                        stop = Some(Stop::Failure);
                    } else if targets_found(&discoveries) {
                        stop = Some(Stop::Found);
                    }
                    if stop.is_some() {
                        break 'levels;
                    }
                }
            }
            graph.progress.push(lets_time_pass);
            graph.idle.push(idle);
            graph.edge_start.push(graph.edges.len());
        }
        if !next.is_empty() {
            depth += 1;
        }
        std::mem::swap(&mut level, &mut next);
    }
    // Stopped within a level: what was found of the next one is one deeper.
    if !next.is_empty() {
        depth += 1;
    }
    let frontier: usize = (level.len() + next.len()) * state_bytes;
    peak = peak.max(graph.bytes() + frontier);
    drop(level);
    drop(next);
    let mut stop = stop.unwrap_or(Stop::Complete);
    // The time-lock pass builds the reverse graph: the edges once more, and per state two
    // offsets, a flag and a work-list slot.
    let time_lock_bytes = graph.bytes()
        + graph.edges.len() * size_of::<u32>()
        + graph.fingerprints.len() * (2 * size_of::<usize>() + 1 + size_of::<u32>());
    if stop == Stop::Complete && time_lock_bytes > limits.max_bytes {
        stop = Stop::Limit(Limit::Memory(limits.max_bytes));
    }
    let (time_lock, idle_states) = if stop == Stop::Complete {
        let locked = graph.first_time_lock();
        peak = peak.max(time_lock_bytes);
        (
            Some(locked.map(|i| replay(model, &graph, i))),
            graph.idle.iter().filter(|&&b| b).count(),
        )
    } else {
        (None, 0)
    };
    Found {
        stop,
        states: graph.fingerprints.len(),
        depth,
        discoveries: discoveries
            .into_iter()
            .map(|d| d.map(|i| replay(model, &graph, i)))
            .collect(),
        time_lock,
        idle_states,
        peak_bytes: peak,
        elapsed: started.elapsed(),
    }
}

/// The actions from the initial state to state `target`, found by replaying the model along
/// the parent chain and matching fingerprints.
fn replay<M>(model: &M, graph: &Graph, target: u32) -> Vec<M::Action>
where
    M: Model,
    M::State: Hash,
    M::Action: Clone,
{
    // A deterministic model replays exactly: the parent chain was built from these very steps.
    let chain = graph.path_to(target);
    let want = |k: usize| graph.fingerprints[chain[k] as usize];
    let Some(mut state) = model
        .init_states()
        .into_iter()
        .find(|s| fingerprint(s) == want(0))
    else {
        return Vec::new();
    };
    let mut path = Vec::with_capacity(chain.len());
    let mut actions = Vec::new();
    for k in 1..chain.len() {
        actions.clear();
        model.actions(&state, &mut actions);
        let step = actions.drain(..).find_map(|a| {
            let next = model.next_state(&state, a.clone())?;
            (fingerprint(&next) == want(k)).then_some((a, next))
        });
        let Some((action, next)) = step else {
            debug_assert!(false, "a step of the parent chain did not replay");
            break;
        };
        path.push(action);
        state = next;
    }
    path
}
