//! The search engine of `heartbeat check` (`heartbeat_model::explore`) on small hand-made models
//! whose answers are known: the state budget, shortest paths, time-locks, idle states, limits
//! and determinism, and a property test against a naive breadth-first search on random graphs.

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::time::Duration;

use heartbeat_model::explore::{search, Found, Limit, Limits, SearchOptions, Stop, Timed};
use proptest::prelude::*;
use stateright::{Expectation, Model, Property};

/// The actions of every toy model: `Tick` lets time pass, `Step(k)` does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Act {
    Tick,
    Step(u32),
}

use Act::{Step, Tick};

// ---------------------------------------------------------------------------------------------
// Toy models
// ---------------------------------------------------------------------------------------------

/// A model given by its transition table: state `s` has the actions `edges[s]`, in that order,
/// each with its target. Property 0 is `always` "not bad", property 1 `sometimes` "wanted".
#[derive(Clone, Debug, Default)]
struct Table {
    init: Vec<u32>,
    edges: Vec<Vec<(Act, u32)>>,
    endings: Vec<u32>,
    bad: Vec<u32>,
    wanted: Vec<u32>,
}

impl Table {
    fn new(edges: &[&[(Act, u32)]]) -> Self {
        Table {
            init: vec![0],
            edges: edges.iter().map(|e| e.to_vec()).collect(),
            ..Table::default()
        }
    }
    fn init(mut self, init: &[u32]) -> Self {
        self.init = init.to_vec();
        self
    }
    fn bad(mut self, bad: &[u32]) -> Self {
        self.bad = bad.to_vec();
        self
    }
    fn wanted(mut self, wanted: &[u32]) -> Self {
        self.wanted = wanted.to_vec();
        self
    }
    fn endings(mut self, endings: &[u32]) -> Self {
        self.endings = endings.to_vec();
        self
    }
    fn out(&self, s: u32) -> &[(Act, u32)] {
        self.edges.get(s as usize).map_or(&[], Vec::as_slice)
    }
}

impl Model for Table {
    type State = u32;
    type Action = Act;

    fn init_states(&self) -> Vec<u32> {
        self.init.clone()
    }

    fn actions(&self, s: &u32, actions: &mut Vec<Act>) {
        actions.extend(self.out(*s).iter().map(|&(a, _)| a));
    }

    fn next_state(&self, s: &u32, action: Act) -> Option<u32> {
        self.out(*s)
            .iter()
            .find(|&&(a, _)| a == action)
            .map(|&(_, t)| t)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("not bad", |m: &Table, s: &u32| !m.bad.contains(s)),
            Property::sometimes("wanted", |m: &Table, s: &u32| m.wanted.contains(s)),
        ]
    }
}

impl Timed for Table {
    fn lets_time_pass(&self, action: &Act) -> bool {
        *action == Tick
    }
    fn is_ending(&self, s: &u32) -> bool {
        self.endings.contains(s)
    }
}

/// The complete graph on `n` states: from every state, `Step(j)` goes to `j` (itself included)
/// and `Tick` stays put, so each state is generated `n + 1` times per expanded state.
#[derive(Debug)]
struct Complete {
    n: u32,
    /// `next_state` calls.
    generated: Cell<usize>,
}

impl Complete {
    fn new(n: u32) -> Self {
        Complete {
            n,
            generated: Cell::new(0),
        }
    }
}

impl Model for Complete {
    type State = u32;
    type Action = Act;

    fn init_states(&self) -> Vec<u32> {
        vec![0]
    }

    fn actions(&self, _: &u32, actions: &mut Vec<Act>) {
        actions.push(Tick);
        actions.extend((0..self.n).map(Step));
    }

    fn next_state(&self, s: &u32, action: Act) -> Option<u32> {
        self.generated.set(self.generated.get() + 1);
        Some(match action {
            Tick => *s,
            Step(j) => j,
        })
    }
}

impl Timed for Complete {
    fn lets_time_pass(&self, action: &Act) -> bool {
        *action == Tick
    }
    fn is_ending(&self, _: &u32) -> bool {
        false
    }
}

/// A clock counting from 0 to `max` with one `Tick` action; `max` is an ending.
#[derive(Debug)]
struct Counter {
    max: u32,
}

impl Model for Counter {
    type State = u32;
    type Action = Act;

    fn init_states(&self) -> Vec<u32> {
        vec![0]
    }

    fn actions(&self, s: &u32, actions: &mut Vec<Act>) {
        if *s < self.max {
            actions.push(Tick);
        }
    }

    fn next_state(&self, s: &u32, action: Act) -> Option<u32> {
        (action == Tick && *s < self.max).then_some(s + 1)
    }
}

impl Timed for Counter {
    fn lets_time_pass(&self, action: &Act) -> bool {
        *action == Tick
    }
    fn is_ending(&self, s: &u32) -> bool {
        *s == self.max
    }
}

/// A wide model: state 0 fans out by `Step(i)` to states `1..=width`, each of which steps on to
/// its own state `width + i`, which ticks in place. Every state claims `heap` heap bytes.
#[derive(Debug)]
struct Fan {
    width: u32,
    heap: usize,
}

impl Model for Fan {
    type State = u32;
    type Action = Act;

    fn init_states(&self) -> Vec<u32> {
        vec![0]
    }

    fn actions(&self, s: &u32, actions: &mut Vec<Act>) {
        match *s {
            0 => actions.extend((1..=self.width).map(Step)),
            s if s <= self.width => actions.push(Step(0)),
            _ => actions.push(Tick),
        }
    }

    fn next_state(&self, s: &u32, action: Act) -> Option<u32> {
        match (*s, action) {
            (0, Step(i)) => Some(i),
            (s, Step(0)) if s <= self.width => Some(self.width + s),
            (s, Tick) if s > self.width => Some(s),
            _ => None,
        }
    }
}

impl Timed for Fan {
    fn lets_time_pass(&self, action: &Act) -> bool {
        *action == Tick
    }
    fn is_ending(&self, _: &u32) -> bool {
        false
    }
    fn heap_bytes(&self, _: &u32) -> usize {
        self.heap
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn options(max_states: usize) -> SearchOptions {
    SearchOptions {
        stop_at_first_failure: false,
        limits: Limits {
            max_states,
            ..Limits::default()
        },
        progress: None,
        until_found: 0,
    }
}

fn full() -> SearchOptions {
    options(1_000_000)
}

fn first_failure() -> SearchOptions {
    SearchOptions {
        stop_at_first_failure: true,
        ..full()
    }
}

/// The states reached by following `path` from each initial state, where every action is
/// offered by `actions` and `next_state` takes it. Empty when the path is invalid from all.
fn ends<M: Model>(model: &M, path: &[M::Action]) -> Vec<M::State>
where
    M::Action: Clone + PartialEq,
{
    let mut out = Vec::new();
    'init: for mut state in model.init_states() {
        for a in path {
            let mut offered = Vec::new();
            model.actions(&state, &mut offered);
            if !offered.contains(a) {
                continue 'init;
            }
            match model.next_state(&state, a.clone()) {
                Some(next) => state = next,
                None => continue 'init,
            }
        }
        out.push(state);
    }
    out
}

/// Asserts that `path` is a valid path from an initial state to a state where `hit` holds.
fn assert_reaches<M: Model>(model: &M, path: &[M::Action], hit: impl Fn(&M::State) -> bool)
where
    M::Action: Clone + PartialEq + Debug,
    M::State: Debug,
{
    let ends = ends(model, path);
    assert!(
        ends.iter().any(hit),
        "path {path:?} is invalid or ends in {ends:?}, none of which is the one sought"
    );
}

/// Asserts that two searches found the same, field by field (all but the wall time).
fn assert_same<A: PartialEq + Debug>(a: &Found<A>, b: &Found<A>) {
    assert_eq!(a.stop, b.stop);
    assert_eq!(a.states, b.states);
    assert_eq!(a.depth, b.depth);
    assert_eq!(a.discoveries, b.discoveries);
    assert_eq!(a.time_lock, b.time_lock);
    assert_eq!(a.idle_states, b.idle_states);
    assert_eq!(a.peak_bytes, b.peak_bytes);
}

// ---------------------------------------------------------------------------------------------
// 1. The state budget
// ---------------------------------------------------------------------------------------------

const N: u32 = 50;

/// The budget counts unique states: n states generated n + 1 times each fit a budget of n.
#[test]
fn budget_of_n_completes_a_complete_graph_of_n() {
    let model = Complete::new(N);
    let found = search(&model, options(N as usize));
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.states, N as usize);
    assert!(
        model.generated.get() >= (N * N) as usize,
        "each state generated ~n times"
    );
    assert_eq!(found.depth, 1);
    assert!(found.discoveries.is_empty());
    assert_eq!(found.time_lock, Some(None));
    assert_eq!(found.idle_states, N as usize, "every Tick stays put");
}

/// One unique state over the budget ends the run as a states limit, undecided.
#[test]
fn budget_of_n_minus_one_is_a_states_limit() {
    let model = Complete::new(N);
    let found = search(&model, options(N as usize - 1));
    assert_eq!(found.stop, Stop::Limit(Limit::States(N as usize - 1)));
    assert_eq!(found.states, N as usize - 1);
    assert_eq!(
        found.time_lock, None,
        "an unfinished run decides no time-lock"
    );
    assert_eq!(found.idle_states, 0);
}

/// A budget of zero discovers nothing and is a limit, never a success.
#[test]
fn budget_of_zero_is_a_states_limit() {
    let model = Complete::new(3);
    let found = search(&model, options(0));
    assert_eq!(found.stop, Stop::Limit(Limit::States(0)));
    assert_eq!(found.states, 0);
    assert_eq!(found.time_lock, None);
}

/// `depth` is the depth of the deepest state discovered, also when a limit ends the run
/// half-way through a level (the states of the next level already count in `states`).
#[test]
fn depth_counts_the_next_level_discovered_before_a_limit() {
    // State 0 is expanded; states 1..n-2 (depth 1) are discovered; state n-1 is over budget.
    let model = Complete::new(N);
    let found = search(&model, options(N as usize - 1));
    assert_eq!(found.states, N as usize - 1);
    assert_eq!(
        found.depth,
        1,
        "{} states discovered, {} of them at depth 1, but depth reported as {}",
        found.states,
        found.states - 1,
        found.depth
    );
}

// ---------------------------------------------------------------------------------------------
// 2.–4. Shortest paths, discoveries kept, stopping at the first failure
// ---------------------------------------------------------------------------------------------

/// 0 → 1 → 2 → 3 → 4 is the long route (first in action order), 0 → 5 the short one; 9 is bad
/// and 8 wanted, both reachable from 4 (depth 5) and from 5 (depth 2).
fn two_routes() -> Table {
    Table::new(&[
        /* 0 */ &[(Step(0), 1), (Step(1), 5)],
        /* 1 */ &[(Step(0), 2)],
        /* 2 */ &[(Step(0), 3)],
        /* 3 */ &[(Step(0), 4)],
        /* 4 */ &[(Step(0), 9), (Step(1), 8)],
        /* 5 */ &[(Step(0), 9), (Step(1), 8)],
        /* 6 */ &[],
        /* 7 */ &[],
        /* 8 */ &[(Tick, 8)],
        /* 9 */ &[(Tick, 9)],
    ])
    .bad(&[9])
    .wanted(&[8])
}

/// Discoveries are of least length even when a longer route is generated first, and replay.
#[test]
fn discoveries_take_the_short_route() {
    let model = two_routes();
    let found = search(&model, full());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.states, 8);
    assert_eq!(found.depth, 4, "state 4 is the deepest, at depth 4");
    let always = found.discoveries[0].as_ref().expect("9 breaks `not bad`");
    assert_eq!(always, &vec![Step(1), Step(0)]);
    assert_reaches(&model, always, |s| model.bad.contains(s));
    let sometimes = found.discoveries[1].as_ref().expect("8 is wanted");
    assert_eq!(sometimes, &vec![Step(1), Step(1)]);
    assert_reaches(&model, sometimes, |s| model.wanted.contains(s));
}

/// A search told to stop once a property is found stops there, with the shortest path, and
/// decides nothing it did not see (no time-lock verdict).
#[test]
fn a_search_stops_once_its_targets_are_found() {
    let model = two_routes();
    let found = search(
        &model,
        SearchOptions {
            until_found: 0b10,
            ..full()
        },
    );
    assert_eq!(found.stop, Stop::Found);
    assert!(found.states < 8);
    assert_eq!(found.discoveries[1], Some(vec![Step(1), Step(1)]));
    assert_eq!(found.time_lock, None);
    // Targets already met by the initial states stop it before anything is expanded.
    let model = Table::new(&[&[(Step(0), 1)], &[(Tick, 1)]]).bad(&[0]);
    let found = search(
        &model,
        SearchOptions {
            until_found: 0b1,
            ..full()
        },
    );
    assert_eq!((found.stop, found.states), (Stop::Found, 1));
}

/// The shortest path may start at any initial state, and replays from that one.
#[test]
fn discoveries_start_at_the_nearest_initial_state() {
    let model = Table::new(&[
        /* 0 */ &[(Step(0), 1)],
        /* 1 */ &[(Step(0), 2)],
        /* 2 */ &[(Step(0), 3)],
        /* 3 */ &[(Tick, 3)],
        /* 4 */ &[(Step(7), 3)],
    ])
    .init(&[0, 4])
    .bad(&[3]);
    let found = search(&model, full());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.states, 5);
    assert_eq!(found.discoveries[0], Some(vec![Step(7)]));
    assert_reaches(&model, &[Step(7)], |s| *s == 3);
}

/// A property broken by an initial state has the empty path, and stops a first-failure run
/// before anything is expanded.
#[test]
fn initial_state_breaking_a_property_has_the_empty_path() {
    let model = Table::new(&[&[(Step(0), 1)], &[(Tick, 1)]]).bad(&[0]);
    let found = search(&model, full());
    assert_eq!(found.discoveries[0], Some(vec![]));
    assert_eq!(found.stop, Stop::Complete);
    let found = search(&model, first_failure());
    assert_eq!(found.stop, Stop::Failure);
    assert_eq!(found.states, 1);
    assert_eq!(found.depth, 0);
    assert_eq!(found.discoveries[0], Some(vec![]));
    assert_eq!(found.time_lock, None);
}

/// A discovery is never overwritten by a later (deeper or same-depth) state breaking the same
/// property; among states of equal depth the first generated wins.
#[test]
fn discoveries_are_never_overwritten() {
    // Bad: 2 and 3 (depth 2, 2 generated first), 4 (depth 3).
    let model = Table::new(&[
        /* 0 */ &[(Step(0), 1)],
        /* 1 */ &[(Step(0), 2), (Step(1), 3)],
        /* 2 */ &[(Step(0), 4)],
        /* 3 */ &[(Tick, 3)],
        /* 4 */ &[(Tick, 4)],
    ])
    .bad(&[2, 3, 4])
    .wanted(&[2, 3, 4]);
    let found = search(&model, full());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.states, 5);
    assert_eq!(found.depth, 3);
    assert_eq!(found.discoveries[0], Some(vec![Step(0), Step(0)]));
    assert_eq!(found.discoveries[1], Some(vec![Step(0), Step(0)]));
}

/// 0 → {1, 2, 3}; 1 → {4, 5 (bad), 6}; 2 → 7. Every state ticks.
fn bad_at_depth_two() -> Table {
    Table::new(&[
        /* 0 */ &[(Step(0), 1), (Step(1), 2), (Step(2), 3), (Tick, 0)],
        /* 1 */ &[(Step(0), 4), (Step(1), 5), (Step(2), 6), (Tick, 1)],
        /* 2 */ &[(Step(0), 7), (Tick, 2)],
        /* 3 */ &[(Tick, 3)],
        /* 4 */ &[(Tick, 4)],
        /* 5 */ &[(Tick, 5)],
        /* 6 */ &[(Tick, 6)],
        /* 7 */ &[(Tick, 7)],
    ])
    .bad(&[5])
}

/// stop_at_first_failure stops at the first broken `always` as `Failure`, counting exactly the
/// states discovered until then, and decides no time-lock.
#[test]
fn first_failure_stops_the_search() {
    let model = bad_at_depth_two();
    let found = search(&model, first_failure());
    assert_eq!(found.stop, Stop::Failure);
    // 0; then 1, 2, 3 from 0; then 4 and 5 (bad) from 1.
    assert_eq!(found.states, 6);
    assert_eq!(found.depth, 2);
    assert_eq!(found.discoveries[0], Some(vec![Step(0), Step(1)]));
    assert_eq!(found.time_lock, None);
    assert_eq!(found.idle_states, 0);

    let found = search(&model, full());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.states, 8);
    assert_eq!(found.discoveries[0], Some(vec![Step(0), Step(1)]));
    assert_eq!(found.time_lock, Some(None));
}

/// A satisfied `sometimes` is not a failure: stop_at_first_failure runs to completion.
#[test]
fn first_failure_ignores_sometimes() {
    let model = bad_at_depth_two().bad(&[]).wanted(&[1]);
    let found = search(&model, first_failure());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.states, 8);
    assert_eq!(found.discoveries[0], None);
    assert_eq!(found.discoveries[1], Some(vec![Step(0)]));
}

// ---------------------------------------------------------------------------------------------
// 5. Time-locks
// ---------------------------------------------------------------------------------------------

/// A busy loop (a state whose only step is a non-time step back to itself, like a timer that
/// fires without moving its deadline) is a time-lock, reported with the shortest path to it.
#[test]
fn busy_loop_is_a_time_lock() {
    let model = Table::new(&[
        /* 0 */ &[(Tick, 0), (Step(0), 1), (Step(1), 3)],
        /* 1 */ &[(Tick, 1), (Step(0), 2)],
        /* 2 */ &[(Tick, 2), (Step(0), 3)],
        /* 3 */ &[(Step(0), 3)],
    ]);
    let found = search(&model, full());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.time_lock, Some(Some(vec![Step(1)])));
    assert_reaches(&model, &[Step(1)], |s| *s == 3);
}

/// A state that lets time pass only by way of a time-locked state is time-locked too, and the
/// shallowest time-locked state is the one reported.
#[test]
fn states_leading_only_to_a_time_lock_are_time_locked() {
    let model = Table::new(&[
        /* 0 */ &[(Tick, 0), (Step(0), 1)],
        /* 1 */ &[(Step(0), 2)],
        /* 2 */ &[(Step(0), 3)],
        /* 3 */ &[(Step(0), 2)],
    ]);
    let found = search(&model, full());
    assert_eq!(found.time_lock, Some(Some(vec![Step(0)])));
}

/// A deadlock (no action at all, not an ending) is a time-lock, also in an initial state.
#[test]
fn deadlock_is_a_time_lock() {
    let model = Table::new(&[&[(Tick, 0), (Step(0), 1)], &[]]);
    let found = search(&model, full());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.time_lock, Some(Some(vec![Step(0)])));

    let model = Table::new(&[&[]]);
    let found = search(&model, full());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.states, 1);
    assert_eq!(found.time_lock, Some(Some(vec![])));
}

/// A designed ending is not a time-lock, whether it has no action or only non-time ones.
#[test]
fn endings_are_not_time_locks() {
    let model = Table::new(&[&[(Tick, 0), (Step(0), 1)], &[]]).endings(&[1]);
    let found = search(&model, full());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.time_lock, Some(None));

    let model = Table::new(&[&[(Tick, 0), (Step(0), 1)], &[(Step(0), 1)]]).endings(&[1]);
    let found = search(&model, full());
    assert_eq!(found.time_lock, Some(None));
}

/// A state that reaches time passing only through several non-time steps is not time-locked
/// (time-passing states discovered after it still count).
#[test]
fn non_time_steps_towards_a_tick_are_fine() {
    let model = Table::new(&[
        /* 0 */ &[(Step(0), 1)],
        /* 1 */ &[(Step(0), 2)],
        /* 2 */ &[(Step(0), 3)],
        /* 3 */ &[(Step(0), 4)],
        /* 4 */ &[(Step(0), 5)],
        /* 5 */ &[(Tick, 0)],
    ]);
    let found = search(&model, full());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.states, 6);
    assert_eq!(found.time_lock, Some(None));
    assert_eq!(found.idle_states, 0);
}

/// A cycle of non-time states is fine when a branch out of it reaches a Tick, and a time-lock
/// when none does.
#[test]
fn non_time_cycles_are_fine_with_a_way_out() {
    let model = Table::new(&[
        /* 0 */ &[(Step(0), 1)],
        /* 1 */ &[(Step(0), 0), (Step(1), 2)],
        /* 2 */ &[(Step(0), 3)],
        /* 3 */ &[(Tick, 3)],
    ]);
    let found = search(&model, full());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.time_lock, Some(None));

    // The same cycle without the way out.
    let model = Table::new(&[
        /* 0 */ &[(Tick, 0), (Step(0), 1)],
        /* 1 */ &[(Step(0), 2)],
        /* 2 */ &[(Step(0), 1)],
    ]);
    let found = search(&model, full());
    assert_eq!(found.time_lock, Some(Some(vec![Step(0)])));
}

// ---------------------------------------------------------------------------------------------
// 6. Idle states
// ---------------------------------------------------------------------------------------------

/// idle_states counts the states whose time-passing step leads back to themselves, and no
/// others (not a Tick elsewhere, not a non-time self-loop, not an ending).
#[test]
fn idle_states_are_those_ticking_in_place() {
    let model = Table::new(&[
        /* 0 */ &[(Tick, 1), (Step(0), 2)],
        /* 1 */ &[(Tick, 1)],
        /* 2 */ &[(Step(0), 3), (Tick, 2)],
        /* 3 */ &[(Step(0), 3), (Tick, 0), (Step(1), 4)],
        /* 4 */ &[],
        /* 5 */ &[(Tick, 5)], // unreachable
    ])
    .endings(&[4]);
    let found = search(&model, full());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.states, 5);
    assert_eq!(found.time_lock, Some(None));
    assert_eq!(found.idle_states, 2, "states 1 and 2");
}

// ---------------------------------------------------------------------------------------------
// 7. Limits
// ---------------------------------------------------------------------------------------------

const BIG: u32 = 100_000;

/// The counter runs to completion without limits (the control for the limit tests).
#[test]
fn counter_completes_without_limits() {
    let model = Counter { max: BIG };
    let found = search(&model, SearchOptions::default());
    assert_eq!(found.stop, Stop::Complete);
    assert_eq!(found.states, BIG as usize + 1);
    assert_eq!(found.depth, BIG as usize);
    assert_eq!(found.time_lock, Some(None));
    assert_eq!(found.idle_states, 0);
    assert!(found.peak_bytes > 0);
}

/// A time limit that has passed ends the run as Limit::Time, undecided.
#[test]
fn time_limit_stops_the_search() {
    let model = Counter { max: BIG };
    let found = search(
        &model,
        SearchOptions {
            limits: Limits {
                max_time: Some(Duration::ZERO),
                ..Limits::default()
            },
            ..SearchOptions::default()
        },
    );
    assert_eq!(found.stop, Stop::Limit(Limit::Time(Duration::ZERO)));
    assert!(found.states < BIG as usize + 1);
    assert_eq!(
        found.depth + 1,
        found.states,
        "a chain: depth is states - 1"
    );
    assert_eq!(found.time_lock, None);
    assert_eq!(found.idle_states, 0);
}

/// A memory limit below what the search holds ends the run as Limit::Memory, undecided.
#[test]
fn memory_limit_stops_the_search() {
    let model = Counter { max: BIG };
    let found = search(
        &model,
        SearchOptions {
            limits: Limits {
                max_bytes: 1,
                ..Limits::default()
            },
            ..SearchOptions::default()
        },
    );
    assert_eq!(found.stop, Stop::Limit(Limit::Memory(1)));
    assert!(found.states < BIG as usize + 1);
    assert!(found.peak_bytes > 1);
    assert_eq!(found.time_lock, None);
}

/// The memory limit sees at least the search's own estimate: a limit just below the peak
/// estimate of a complete run stops the same run. (It may stop earlier: the process's resident
/// memory counts too, and that is shared with every test running beside this one.)
#[test]
fn memory_limit_below_the_peak_estimate_is_hit() {
    let model = Counter { max: BIG };
    let complete = search(&model, SearchOptions::default());
    assert_eq!(complete.stop, Stop::Complete);
    let found = search(
        &model,
        SearchOptions {
            limits: Limits {
                max_bytes: complete.peak_bytes - 1,
                ..Limits::default()
            },
            ..SearchOptions::default()
        },
    );
    assert_eq!(
        found.stop,
        Stop::Limit(Limit::Memory(complete.peak_bytes - 1))
    );
}

/// heap_bytes of the states waiting in the frontier counts toward the memory limit.
#[test]
fn heap_bytes_count_toward_the_memory_limit() {
    let limits = Limits {
        max_bytes: 64 << 20,
        ..Limits::default()
    };
    let opts = SearchOptions {
        limits,
        ..SearchOptions::default()
    };
    let light = search(
        &Fan {
            width: 3000,
            heap: 0,
        },
        opts,
    );
    assert_eq!(light.stop, Stop::Complete);
    assert_eq!(light.states, 6001);
    assert_eq!(light.idle_states, 3000);
    assert_eq!(light.time_lock, Some(None));
    // ~1000 states wait in the frontier at the 1024th expansion: 1000 MiB.
    let heavy = search(
        &Fan {
            width: 3000,
            heap: 1 << 20,
        },
        opts,
    );
    assert_eq!(heavy.stop, Stop::Limit(Limit::Memory(64 << 20)));
    assert_eq!(heavy.time_lock, None);
}

// ---------------------------------------------------------------------------------------------
// 8. Determinism
// ---------------------------------------------------------------------------------------------

/// Two searches of the same model find the same (all fields but the wall time), whether they
/// complete, fail first or hit a limit.
#[test]
fn searches_are_deterministic() {
    let model = two_routes();
    assert_same(&search(&model, full()), &search(&model, full()));
    let model = bad_at_depth_two();
    assert_same(
        &search(&model, first_failure()),
        &search(&model, first_failure()),
    );
    let model = Table::new(&[&[(Tick, 0), (Step(0), 1)], &[(Step(0), 1)]]);
    assert_same(&search(&model, full()), &search(&model, full()));
    let model = Complete::new(N);
    assert_same(&search(&model, options(10)), &search(&model, options(10)));
    let model = Counter { max: 5000 };
    let tight = SearchOptions {
        limits: Limits {
            max_bytes: 1,
            ..Limits::default()
        },
        ..SearchOptions::default()
    };
    assert_same(&search(&model, tight), &search(&model, tight));
}

// ---------------------------------------------------------------------------------------------
// Against a naive search
// ---------------------------------------------------------------------------------------------

/// What a naive search (whole states in a map, a fixpoint for time-locks) finds.
#[derive(Debug)]
struct Naive {
    /// Reachable states with their least depth.
    depth: HashMap<u32, usize>,
    /// Per property, the least depth of a state that breaks (`always`) or satisfies it.
    first: Vec<Option<usize>>,
    /// Reachable states from which no path reaches a Tick step or an ending.
    locked: HashSet<u32>,
    idle: usize,
}

fn naive(model: &Table) -> Naive {
    let mut depth = HashMap::new();
    let mut order = Vec::new();
    let mut queue = VecDeque::new();
    for s in model.init_states() {
        if let std::collections::hash_map::Entry::Vacant(e) = depth.entry(s) {
            e.insert(0);
            queue.push_back(s);
        }
    }
    let mut succ: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut good = HashSet::new();
    let mut idle = 0;
    while let Some(s) = queue.pop_front() {
        order.push(s);
        let d = depth[&s];
        let mut actions = Vec::new();
        model.actions(&s, &mut actions);
        let mut ticks_in_place = false;
        if model.is_ending(&s) {
            good.insert(s);
        }
        for a in actions {
            let Some(t) = model.next_state(&s, a) else {
                continue;
            };
            if model.lets_time_pass(&a) {
                good.insert(s);
                ticks_in_place |= t == s;
            }
            succ.entry(s).or_default().push(t);
            if let std::collections::hash_map::Entry::Vacant(e) = depth.entry(t) {
                e.insert(d + 1);
                queue.push_back(t);
            }
        }
        idle += usize::from(ticks_in_place);
    }
    loop {
        let before = good.len();
        for &s in &order {
            if succ
                .get(&s)
                .is_some_and(|ts| ts.iter().any(|t| good.contains(t)))
            {
                good.insert(s);
            }
        }
        if good.len() == before {
            break;
        }
    }
    let first = model
        .properties()
        .iter()
        .map(|p| {
            order
                .iter()
                .filter(|s| {
                    let holds = (p.condition)(model, s);
                    match p.expectation {
                        Expectation::Always => !holds,
                        _ => holds,
                    }
                })
                .map(|s| depth[s])
                .min()
        })
        .collect();
    let locked = order
        .iter()
        .copied()
        .filter(|s| !good.contains(s))
        .collect();
    Naive {
        depth,
        first,
        locked,
        idle,
    }
}

fn random_table() -> impl Strategy<Value = Table> {
    (1u32..10).prop_flat_map(|n| {
        let edge = (any::<bool>(), 0..n);
        let subset = prop::collection::vec(0..n, 0..3);
        (
            prop::collection::vec(0..n, 1..3),
            prop::collection::vec(prop::collection::vec(edge, 0..4), n as usize),
            subset.clone(),
            subset.clone(),
            subset,
        )
            .prop_map(|(init, edges, endings, bad, wanted)| Table {
                init,
                edges: edges
                    .into_iter()
                    .map(|es| {
                        es.into_iter()
                            .enumerate()
                            .map(|(k, (tick, t))| (if tick { Tick } else { Step(k as u32) }, t))
                            .collect()
                    })
                    .collect(),
                endings,
                bad,
                wanted,
            })
    })
}

proptest! {
    /// On random graphs the engine agrees with a naive search: state count, depth, shortest
    /// discoveries (valid paths), the shallowest time-lock, idle states, and the budget.
    #[test]
    fn agrees_with_a_naive_search(
        model in random_table(),
        max_states in 0usize..12,
        stop_at_first_failure in any::<bool>(),
    ) {
        let reference = naive(&model);
        let reachable = reference.depth.len();
        let opts = SearchOptions { stop_at_first_failure, ..options(max_states) };
        let found = search(&model, opts);
        let hits: [fn(&Table, &u32) -> bool; 2] = [
            |m: &Table, s: &u32| m.bad.contains(s),
            |m: &Table, s: &u32| m.wanted.contains(s),
        ];
        // Whatever was discovered is of least length and valid.
        for (p, path) in found.discoveries.iter().enumerate() {
            if let Some(path) = path {
                prop_assert_eq!(Some(path.len()), reference.first[p], "property {}", p);
                let ends = ends(&model, path);
                prop_assert!(ends.iter().any(|s| hits[p](&model, s)), "path {:?}", path);
            }
        }
        prop_assert!(found.states <= reachable);
        let failure_first = stop_at_first_failure && reference.first[0].is_some();
        match found.stop {
            Stop::Complete => {
                prop_assert!(max_states >= reachable);
                prop_assert!(!failure_first);
                prop_assert_eq!(found.states, reachable);
                prop_assert_eq!(found.depth, reference.depth.values().copied().max().unwrap_or(0));
                for (p, first) in reference.first.iter().enumerate() {
                    prop_assert_eq!(found.discoveries[p].as_ref().map(Vec::len), *first);
                }
                let lock = found.time_lock.clone().expect("decided after a complete run");
                let shallowest = reference.locked.iter().map(|s| reference.depth[s]).min();
                prop_assert_eq!(lock.as_ref().map(Vec::len), shallowest);
                if let Some(path) = &lock {
                    let ends = ends(&model, path);
                    prop_assert!(ends.iter().any(|s| reference.locked.contains(s)));
                }
                prop_assert_eq!(found.idle_states, reference.idle);
            }
            Stop::Found => prop_assert!(false, "no target was set"),
            Stop::Failure => {
                prop_assert!(failure_first);
                prop_assert!(found.discoveries[0].is_some());
                prop_assert_eq!(found.time_lock, None);
            }
            Stop::Limit(limit) => {
                prop_assert_eq!(limit, Limit::States(max_states));
                prop_assert!(max_states < reachable);
                prop_assert_eq!(found.states, max_states);
                prop_assert_eq!(found.time_lock, None);
                prop_assert_eq!(found.idle_states, 0);
            }
        }
    }
}
