//! Application message queues that count bytes, not messages.
//!
//! Each direction of a connection has a byte budget; a message counts `len + MESSAGE_OVERHEAD`
//! bytes of it from the moment it is queued until it leaves the queue: taken by the application
//! ([`Inbox::recv`]) inbound, written to the socket outbound.
//!
//! - Inbound, a message is admitted whenever the bytes queued are below the budget, even if it
//!   takes them over: the queue holds at most the budget plus one message. Every message is
//!   copied into an allocation of its own first: tungstenite cuts frames out of its read buffer
//!   without copying, and a small message queued as it came would keep that whole buffer alive.
//! - Outbound, [`MessageSender::send`] waits until the message's bytes fit (at most the whole
//!   budget, so one message larger than the budget still passes, alone). Budgets are tokio
//!   semaphore permits, one per byte.
//!
//! This module never reads a socket and never decides a close.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Bytes a queued message is charged beyond its payload: the message value, the queue node and
/// the permit, rounded up. Without it, a flood of empty messages would cost nothing.
pub const MESSAGE_OVERHEAD: usize = 64;

/// A queued outbound message and the budget it holds; dropping it gives the budget back.
#[derive(Debug)]
pub(crate) struct Charged {
    message: WsMessage,
    budget: OwnedSemaphorePermit,
}

impl Charged {
    /// The message and the budget it holds (given back when the permit is dropped).
    pub(crate) fn split(self) -> (WsMessage, OwnedSemaphorePermit) {
        (self.message, self.budget)
    }
}

/// The outbound byte budget.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    permits: Arc<Semaphore>,
    total: usize,
}

impl Budget {
    pub(crate) fn new(bytes: usize) -> Budget {
        let total = bytes.clamp(1, Semaphore::MAX_PERMITS);
        Budget {
            permits: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// What `message` is charged, as a permit count.
    pub(crate) fn cost(&self, message: &WsMessage) -> u32 {
        let bytes = message
            .len()
            .saturating_add(MESSAGE_OVERHEAD)
            .min(self.total);
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// Waits until `cost` bytes are free; `None` once the queue is closed.
    pub(crate) async fn reserve(&self, cost: u32) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits)
            .acquire_many_owned(cost)
            .await
            .ok()
    }

    fn try_reserve(&self, cost: u32) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_many_owned(cost).ok()
    }

    /// Wakes everyone waiting for budget: the queue is over.
    pub(crate) fn close(&self) {
        self.permits.close();
    }
}

/// The inbound budget: bytes queued for the application, and a wake-up for the reader each
/// time the application takes a message.
#[derive(Debug)]
struct Queued {
    bytes: AtomicUsize,
    budget: usize,
    taken: Notify,
}

/// What a queued inbound message counts against the budget; given back when it is taken.
#[derive(Debug)]
struct InCharge {
    queued: Arc<Queued>,
    bytes: usize,
}

impl Drop for InCharge {
    fn drop(&mut self) {
        self.queued.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        self.queued.taken.notify_one();
    }
}

#[derive(Debug)]
struct InMessage {
    message: WsMessage,
    _charge: InCharge,
}

/// Application messages from the peer (text and binary frames that are not heartbeats), in
/// order. Each message counts against the connection's inbound byte budget until it is taken
/// here; while the bytes queued are at or over the budget the connection's reader stops
/// reading, and the peer is slowed down by TCP flow control. Ends when the connection ends.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<InMessage>,
}

impl Inbox {
    /// The next message; `None` once the connection has ended and every message was taken.
    pub async fn recv(&mut self) -> Option<WsMessage> {
        self.rx.recv().await.map(|m| m.message)
    }

    /// The next message if one is queued, without waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if none is queued now, [`TryRecvError::Disconnected`] once the
    /// connection has ended and every message was taken.
    pub fn try_recv(&mut self) -> Result<WsMessage, TryRecvError> {
        self.rx.try_recv().map(|m| m.message)
    }
}

/// The adapter's end of an [`Inbox`].
#[derive(Debug)]
pub(crate) struct InboxSender {
    tx: mpsc::UnboundedSender<InMessage>,
    queued: Arc<Queued>,
}

pub(crate) fn inbox(budget_bytes: usize) -> (InboxSender, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        InboxSender {
            tx,
            queued: Arc::new(Queued {
                bytes: AtomicUsize::new(0),
                budget: budget_bytes.max(1),
                taken: Notify::new(),
            }),
        },
        Inbox { rx },
    )
}

/// A copy of `message` in an allocation of its own. tungstenite 0.30 cuts a frame's payload
/// out of its read buffer without copying (`split_to().freeze()`), so a 1-byte message queued
/// as it came would keep the whole buffer (4 KiB or more) alive for as long as it waits.
pub(crate) fn detached(message: WsMessage) -> WsMessage {
    match message {
        WsMessage::Text(text) => WsMessage::text(text.as_str().to_owned()),
        WsMessage::Binary(bytes) => WsMessage::binary(bytes.to_vec()),
        other => other,
    }
}

impl InboxSender {
    /// Queues `message` (copied, see [`detached`]) if the bytes queued are below the budget now,
    /// even if it takes them over; gives the copy back otherwise. A message for an application
    /// that dropped its [`Inbox`] is dropped.
    pub(crate) fn try_push(&self, message: WsMessage) -> Result<(), WsMessage> {
        self.try_push_detached(detached(message))
    }

    /// [`InboxSender::try_push`] for a message already [`detached`].
    pub(crate) fn try_push_detached(&self, message: WsMessage) -> Result<(), WsMessage> {
        if self.tx.is_closed() {
            return Ok(());
        }
        if self.queued.bytes.load(Ordering::Acquire) >= self.queued.budget {
            return Err(message);
        }
        self.push(message);
        Ok(())
    }

    /// Queues `message` whatever the bytes queued: for the one message the reader held while
    /// the queue was full, once [`InboxSender::below_budget`] said so.
    pub(crate) fn push(&self, message: WsMessage) {
        let bytes = message.len().saturating_add(MESSAGE_OVERHEAD);
        self.queued.bytes.fetch_add(bytes, Ordering::AcqRel);
        let charge = InCharge {
            queued: Arc::clone(&self.queued),
            bytes,
        };
        let _ = self.tx.send(InMessage {
            message,
            _charge: charge,
        });
    }

    /// Resolves once the bytes queued are below the budget.
    pub(crate) async fn below_budget(&self) {
        loop {
            let taken = self.queued.taken.notified();
            if self.queued.bytes.load(Ordering::Acquire) < self.queued.budget {
                return;
            }
            taken.await;
        }
    }

    /// Resolves when the application has dropped its [`Inbox`].
    pub(crate) async fn closed(&self) {
        self.tx.closed().await;
    }

    /// Something that resolves when the application has dropped its [`Inbox`], for a task
    /// other than the reader. It keeps the [`Inbox`] open, like the reader does.
    pub(crate) fn watch_closed(&self) -> InboxClosed {
        InboxClosed {
            tx: self.tx.clone(),
        }
    }
}

/// See [`InboxSender::watch_closed`].
#[derive(Debug)]
pub(crate) struct InboxClosed {
    tx: mpsc::UnboundedSender<InMessage>,
}

impl InboxClosed {
    /// Resolves when the application has dropped its [`Inbox`].
    pub(crate) async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// Why a message was not queued; the message comes back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection has ended (or, on a client, was closed for good).
    #[error("the connection has ended")]
    Closed(WsMessage),
    /// [`MessageSender::try_send`] only: the outbound byte budget is full now.
    #[error("the outbound byte budget is full")]
    Full(WsMessage),
}

impl SendError {
    /// The message that was not queued.
    #[must_use]
    pub fn into_message(self) -> WsMessage {
        match self {
            SendError::Closed(m) | SendError::Full(m) => m,
        }
    }
}

/// Queues application messages towards the peer; cheap to clone. Each message holds part of
/// the connection's outbound byte budget until it has been written to the socket; while the
/// budget is full, [`MessageSender::send`] waits. Heartbeat frames never queue here.
#[derive(Clone, Debug)]
pub struct MessageSender {
    tx: mpsc::UnboundedSender<Charged>,
    budget: Budget,
}

/// The writer's end of a [`MessageSender`].
pub(crate) type Outgoing = mpsc::UnboundedReceiver<Charged>;

pub(crate) fn outbox(budget_bytes: usize) -> (MessageSender, Outgoing, Budget) {
    let (tx, rx) = mpsc::unbounded_channel();
    let budget = Budget::new(budget_bytes);
    (
        MessageSender {
            tx,
            budget: budget.clone(),
        },
        rx,
        budget,
    )
}

impl MessageSender {
    /// Queues `message`, waiting while the outbound byte budget is full.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the connection has ended.
    pub async fn send(&self, message: WsMessage) -> Result<(), SendError> {
        if self.tx.is_closed() {
            return Err(SendError::Closed(message));
        }
        match self.budget.reserve(self.budget.cost(&message)).await {
            Some(permit) => self.queue(message, permit),
            None => Err(SendError::Closed(message)),
        }
    }

    /// Queues `message` if the outbound byte budget has room for it now.
    ///
    /// # Errors
    /// [`SendError::Full`] if it has not, [`SendError::Closed`] once the connection has ended.
    pub fn try_send(&self, message: WsMessage) -> Result<(), SendError> {
        if self.tx.is_closed() {
            return Err(SendError::Closed(message));
        }
        match self.budget.try_reserve(self.budget.cost(&message)) {
            Some(permit) => self.queue(message, permit),
            None => Err(SendError::Full(message)),
        }
    }

    /// True once the connection has ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    fn queue(&self, message: WsMessage, budget: OwnedSemaphorePermit) -> Result<(), SendError> {
        self.tx
            .send(Charged { message, budget })
            .map_err(|e| SendError::Closed(e.0.message))
    }
}
