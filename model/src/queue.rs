//! The simulator's event queue: earliest `(time, sequence number)` first, so events at the same
//! time come out in the order they were scheduled (deterministic ties).
//!
//! A radix heap over the time: the simulator never schedules before the last event it took,
//! so keys only grow, and a radix heap then pushes in O(1) and pops in amortised O(log range)
//! with no comparisons between items. Items with the same time always sit together in one
//! bucket in the order they were pushed, so the earliest bucket is a FIFO: ties leave in
//! scheduling order. 65 small buckets keep it cache-friendly (a calendar queue with a slot per
//! few milliseconds was tried and was slower: its slots are scattered in memory). It allocates
//! only while its buckets grow to their working size.

use std::collections::VecDeque;

/// A monotone priority queue of `T` keyed by time, ties broken by insertion order.
#[derive(Clone, Debug)]
pub struct EventQueue<T> {
    /// Items whose time equals `last`, in push order.
    front: VecDeque<T>,
    /// Bucket `b` holds items whose time's highest bit differing from `last` is bit `b`.
    buckets: Vec<Vec<(u64, T)>>,
    /// Bit `b` set when bucket `b` is not empty.
    mask: u64,
    /// The time of `front`; no item is earlier.
    last: u64,
    len: usize,
    pushed: u64,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue::new()
    }
}

fn bucket(at: u64, last: u64) -> usize {
    63 - (at ^ last).leading_zeros() as usize
}

impl<T> EventQueue<T> {
    /// An empty queue.
    #[must_use]
    pub fn new() -> EventQueue<T> {
        EventQueue {
            front: VecDeque::new(),
            buckets: (0..64).map(|_| Vec::new()).collect(),
            mask: 0,
            last: 0,
            len: 0,
            pushed: 0,
        }
    }

    /// Number of pending events.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is pending.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Events pushed since creation.
    #[must_use]
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Schedules `value` at time `at`. Events at the same time leave in the order pushed.
    pub fn push(&mut self, at: u64, value: T) {
        if at < self.last {
            // Earlier than what `peek_time` settled on (only possible between runs): re-base.
            self.rebase(at);
        }
        self.insert(at, value);
        self.len += 1;
        self.pushed += 1;
    }

    #[inline]
    fn insert(&mut self, at: u64, value: T) {
        if at == self.last {
            self.front.push_back(value);
        } else {
            let b = bucket(at, self.last);
            self.buckets[b].push((at, value));
            self.mask |= 1 << b;
        }
    }

    /// The time of the earliest event.
    pub fn peek_time(&mut self) -> Option<u64> {
        self.settle();
        (!self.front.is_empty()).then_some(self.last)
    }

    /// Removes the earliest event.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        self.settle();
        let value = self.front.pop_front()?;
        self.len -= 1;
        Some((self.last, value))
    }

    /// Makes `front` hold the earliest items, if it is empty.
    fn settle(&mut self) {
        if !self.front.is_empty() || self.mask == 0 {
            return;
        }
        let b = self.mask.trailing_zeros() as usize;
        let mut items = std::mem::take(&mut self.buckets[b]);
        self.mask &= !(1 << b);
        let Some(min) = items.iter().map(|(at, _)| *at).min() else {
            return;
        };
        self.last = min;
        // Every item moves to a lower bucket (or the front), keeping its order.
        for (at, v) in items.drain(..) {
            self.insert(at, v);
        }
        // Keep the emptied bucket's capacity for next time.
        self.buckets[b] = items;
    }

    fn rebase(&mut self, at: u64) {
        let old = self.last;
        let mut all: Vec<(u64, T)> = self.front.drain(..).map(|v| (old, v)).collect();
        for b in &mut self.buckets {
            all.append(b);
        }
        self.mask = 0;
        self.last = at;
        for (t, v) in all {
            self.insert(t, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EventQueue;
    use proptest::prelude::*;

    #[test]
    fn ties_leave_in_push_order() {
        let mut q = EventQueue::new();
        q.push(5, 'a');
        q.push(3, 'b');
        q.push(5, 'c');
        q.push(3, 'd');
        let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, v)| v)).collect();
        assert_eq!(order, ['b', 'd', 'a', 'c']);
        assert!(q.is_empty());
    }

    proptest! {
        /// Matches a sorted list under any interleaving of monotone pushes and pops, including
        /// pushes before a peeked time (which re-base the queue).
        #[test]
        fn behaves_like_a_sorted_list(
            ops in proptest::collection::vec(
                (prop_oneof![0u64..1_000, 0u64..100_000_000, 0u64..(1 << 40)], 0u8..4),
                0..400,
            )
        ) {
            let mut q = EventQueue::new();
            let mut model: Vec<(u64, u64)> = Vec::new();
            let (mut now, mut n) = (0u64, 0u64);
            for (dt, op) in ops {
                match op {
                    0 => {
                        let got = q.pop();
                        model.sort_unstable();
                        let want = if model.is_empty() { None } else { Some(model.remove(0)) };
                        prop_assert_eq!(got, want);
                        if let Some((t, _)) = want {
                            now = t;
                        }
                    }
                    1 => {
                        model.sort_unstable();
                        prop_assert_eq!(q.peek_time(), model.first().map(|x| x.0));
                    }
                    _ => {
                        q.push(now + dt, n);
                        model.push((now + dt, n));
                        n += 1;
                    }
                }
                prop_assert_eq!(q.len(), model.len());
            }
        }
    }
}
