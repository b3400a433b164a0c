//! Application message queues that count bytes, not messages.
//!
//! Each direction of a connection has a byte budget: a message holds `len + MESSAGE_OVERHEAD`
//! bytes of it (at most the whole budget, so one message larger than the budget still passes,
//! alone) from the moment it is queued until it leaves the queue: taken by the application
//! ([`Inbox::recv`]) inbound, written to the socket outbound. Budgets are tokio semaphore
//! permits, one per byte. This module never reads a socket and never decides a close.

use std::sync::Arc;

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Bytes a queued message is charged beyond its payload: the message value, the queue node and
/// the permit, rounded up. Without it, a flood of empty messages would cost nothing.
pub const MESSAGE_OVERHEAD: usize = 64;

/// A queued message and the budget it holds; dropping it gives the budget back.
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

/// One direction's byte budget.
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

/// Application messages from the peer (text and binary frames that are not heartbeats), in
/// order. Each message holds part of the connection's inbound byte budget until it is taken
/// here; while the budget is full the connection's reader stops reading, and the peer is slowed
/// down by TCP flow control. Ends when the connection ends.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Charged>,
}

impl Inbox {
    /// The next message; `None` once the connection has ended and every message was taken.
    pub async fn recv(&mut self) -> Option<WsMessage> {
        self.rx.recv().await.map(|c| c.message)
    }

    /// The next message if one is queued, without waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if none is queued now, [`TryRecvError::Disconnected`] once the
    /// connection has ended and every message was taken.
    pub fn try_recv(&mut self) -> Result<WsMessage, TryRecvError> {
        self.rx.try_recv().map(|c| c.message)
    }
}

/// The adapter's end of an [`Inbox`].
#[derive(Debug)]
pub(crate) struct InboxSender {
    tx: mpsc::UnboundedSender<Charged>,
    budget: Budget,
}

pub(crate) fn inbox(budget_bytes: usize) -> (InboxSender, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        InboxSender {
            tx,
            budget: Budget::new(budget_bytes),
        },
        Inbox { rx },
    )
}

impl InboxSender {
    pub(crate) fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Queues `message` if its bytes fit in the budget now; gives it back otherwise. A message
    /// for an application that dropped its [`Inbox`] is dropped.
    pub(crate) fn try_push(&self, message: WsMessage) -> Result<(), WsMessage> {
        match self.budget.try_reserve(self.budget.cost(&message)) {
            Some(permit) => {
                self.push(message, permit);
                Ok(())
            }
            None if self.tx.is_closed() => Ok(()),
            None => Err(message),
        }
    }

    /// Queues `message` with budget already reserved for it.
    pub(crate) fn push(&self, message: WsMessage, budget: OwnedSemaphorePermit) {
        let _ = self.tx.send(Charged { message, budget });
    }

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
