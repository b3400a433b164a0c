//! Traces: every input and output of a run, with its time, in the order it happened.
//!
//! A [`Trace`] is a plain list of [`Entry`] values that any code can build by pushing: the
//! simulator ([`crate::sim`]) records one as it runs, and the model checker builds one from a
//! counterexample path. The renderings ([`crate::render`]) and the [`crate::render::Summary`]
//! read nothing but the trace, so a trace built by hand renders exactly like a simulated one.
//!
//! # Building a trace (for example from a model-checker path)
//! ```
//! use heartbeat_core::{Event, Instant, Message, Status};
//! use heartbeat_model::trace::{Trace, What, Who};
//!
//! let mut trace = Trace::new();
//! let (c, s) = (Who::Client(0), Who::Server(0));
//! trace.push(Instant::ZERO, c, What::Event(Event::Connect { attempt: 0 }));
//! trace.push(Instant::from_millis(50), s, What::Open);
//! trace.push(Instant::from_millis(100), c, What::Open);
//! trace.push(Instant::from_millis(100), c, What::Send(Message::Ping { seq: 0 }));
//! trace.push(Instant::from_millis(150), s, What::Receive(Message::Ping { seq: 0 }));
//! trace.push(Instant::from_millis(150), s, What::Send(Message::Pong { seq: 0 }));
//! trace.push(Instant::from_secs(40), Who::World, What::note("server stalled for 40s"));
//! trace.push(Instant::from_millis(200), c, What::Receive(Message::Pong { seq: 0 }));
//! trace.push(Instant::from_millis(200), c, What::Status(Status::Healthy));
//! assert_eq!(trace.len(), 9);
//! let text = heartbeat_model::render::ascii(&trace);
//! assert!(text.contains("ping 0"));
//! ```
//!
//! Entries need not be pushed in time order; renderers show them in the order pushed, which
//! for the simulator is the order of execution.

use std::borrow::Cow;

use heartbeat_core::{Event, Hint, Instant, Message, ServerEvent, Status};

/// Who did or saw something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Who {
    /// The frontend with this index (a `heartbeat_core::Client`).
    Client(u32),
    /// The backend's side of client `n`'s connection (a `heartbeat_core::Server`). Every
    /// connection of client `n` uses the same index; the server process is one.
    Server(u32),
    /// The world: network, server process, host. Used for fault and scenario notes.
    World,
}

/// What happened. Every variant names its point of view through the entry's [`Who`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// `who` wrote this heartbeat message to its socket (drained from `poll_transmit`).
    Send(Message),
    /// `who` read this heartbeat message (`handle_message` was called with it).
    Receive(Message),
    /// The network dropped this message sent by `who` (loss, partition, dead peer).
    Lost(Message),
    /// A client event drained from `Client::poll_event` (`who` is a client).
    Event(Event),
    /// A server event drained from `Server::poll_event` (`who` is a server).
    ServerEvent(ServerEvent),
    /// The client's status (`Client::status`) changed to this.
    Status(Status),
    /// A host hint given to the client (`Client::handle_hint`).
    Hint(Hint),
    /// The socket opened: for a client, `handle_connected` was called; for a server, the
    /// connection was accepted and a fresh `Server` created.
    Open,
    /// The socket closed: for a client, `handle_disconnected` was called; for a server, the
    /// connection (and its `Server` value) was dropped.
    Closed,
    /// Free text: a fault or world fact ("server stalled", "network partitioned",
    /// "client timer fired 40s late"), or a scenario's conclusion.
    Note(Cow<'static, str>),
}

impl What {
    /// A note from any text.
    pub fn note(text: impl Into<Cow<'static, str>>) -> What {
        What::Note(text.into())
    }
}

/// One line of a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When, on the run's clock.
    pub at: Instant,
    /// Whose point of view.
    pub who: Who,
    /// What happened.
    pub what: What,
}

/// Everything that happened in a run, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// A one-line title for renderings (the scenario's name and what it shows); may be empty.
    pub title: String,
    /// The entries, in the order they happened.
    pub entries: Vec<Entry>,
}

impl Trace {
    /// An empty trace.
    #[must_use]
    pub fn new() -> Trace {
        Trace::default()
    }

    /// An empty trace with a title.
    #[must_use]
    pub fn titled(title: impl Into<String>) -> Trace {
        Trace {
            title: title.into(),
            entries: Vec::new(),
        }
    }

    /// Appends an entry.
    pub fn push(&mut self, at: Instant, who: Who, what: What) {
        self.entries.push(Entry { at, who, what });
    }

    /// Appends a free-text note.
    pub fn note(&mut self, at: Instant, who: Who, text: impl Into<Cow<'static, str>>) {
        self.push(at, who, What::note(text));
    }

    /// The number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Entry> {
        self.entries.iter()
    }

    /// The time of the last entry, or zero.
    #[must_use]
    pub fn end(&self) -> Instant {
        self.entries.iter().map(|e| e.at).max().unwrap_or_default()
    }

    /// The client events recorded, with their time and client index.
    pub fn client_events(&self) -> impl Iterator<Item = (Instant, u32, Event)> + '_ {
        self.entries.iter().filter_map(|e| match (e.who, &e.what) {
            (Who::Client(c), What::Event(ev)) => Some((e.at, c, *ev)),
            _ => None,
        })
    }

    /// The server events recorded, with their time and connection index.
    pub fn server_events(&self) -> impl Iterator<Item = (Instant, u32, ServerEvent)> + '_ {
        self.entries.iter().filter_map(|e| match (e.who, &e.what) {
            (Who::Server(c), What::ServerEvent(ev)) => Some((e.at, c, *ev)),
            _ => None,
        })
    }
}

impl<'a> IntoIterator for &'a Trace {
    type Item = &'a Entry;
    type IntoIter = std::slice::Iter<'a, Entry>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}
