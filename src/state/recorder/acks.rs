//! How a PUT's intent learns that it is durable: one wake of the runtime a commit, not one an intent.
//!
//! A task woken from another thread costs the runtime a wake of its own (an `eventfd` write, an `epoll_wait`
//! returning); a task woken from the runtime's own thread costs a push on its run queue. So the recorder thread
//! wakes one waiter of a commit (the leader), and the leader, polled on the runtime, wakes the others.
//!
//! Each intent holds a ticket, handed out in the order the intents were queued; a commit takes a prefix of the
//! queue, so "every ticket up to N has been through a commit" says it all. Liveness does not rest on the leader: a
//! waiter dropped wakes the settled others, and the recorder wakes a settled waiter again at every wake of its own
//! (at most `OUTCOME_WAIT` apart), so no waiter is left asleep once its commit is done.

use crate::sync::lock;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

/// What the intents' waiters share with the recorder thread.
#[derive(Default)]
pub(super) struct Acks {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every ticket up to this one has been through a commit (tickets start at 1).
    settled: u64,
    /// The first ticket of the first commit that failed, and why: it and every later ticket fail (once a commit
    /// fails, the recorder commits nothing more: no PUT goes out unrecorded).
    failed: Option<(u64, String)>,
    /// The recorder has stopped: a ticket not settled by then never will be.
    stopped: bool,
    /// The waiters not woken yet, with their tickets.
    waiting: Vec<(u64, Waker)>,
}

impl State {
    /// What became of `ticket`, if anything yet.
    fn result(&self, ticket: u64) -> Option<Result<(), String>> {
        if ticket <= self.settled {
            return Some(match &self.failed {
                Some((first, message)) if ticket >= *first => Err(message.clone()),
                _ => Ok(()),
            });
        }
        self.stopped.then(|| Err("the recorder has stopped".to_string()))
    }

    fn is_done(&self, ticket: u64) -> bool {
        ticket <= self.settled || self.stopped
    }

    /// Takes the wakers of every waiter whose ticket is done.
    fn take_done(&mut self) -> Vec<Waker> {
        let mut done = Vec::new();
        let mut index = 0;
        while index < self.waiting.len() {
            if self.is_done(self.waiting[index].0) {
                done.push(self.waiting.swap_remove(index).1);
            } else {
                index += 1;
            }
        }
        done
    }
}

impl Acks {
    /// The recorder thread: every ticket up to `upto` has been through a commit with this result. Wakes one of
    /// their waiters (the others are woken by it, on the runtime).
    pub(super) fn settle(&self, upto: u64, result: &Result<(), String>) {
        let mut state = lock(&self.state);
        if let Err(message) = result {
            let first = state.settled + 1;
            state.failed.get_or_insert_with(|| (first, message.clone()));
        }
        state.settled = state.settled.max(upto);
        let leader = take_leader(&mut state);
        drop(state);
        if let Some(leader) = leader {
            leader.wake();
        }
    }

    /// The recorder thread, at each wake: a settled waiter not woken yet (its leader went away unpolled) is woken.
    pub(super) fn nudge(&self) {
        let leader = take_leader(&mut lock(&self.state));
        if let Some(leader) = leader {
            leader.wake();
        }
    }

    /// The recorder has stopped: every waiter still waiting is told so.
    pub(super) fn stop(&self) {
        let mut state = lock(&self.state);
        state.stopped = true;
        let wakers = state.take_done();
        drop(state);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Waits until `ticket` has been through a commit: `Err` with the recorder's words when it failed or never will.
    pub(super) fn durable(&self, ticket: u64) -> Durable<'_> {
        Durable { acks: self, ticket }
    }
}

/// One waiter whose ticket is done, taken from the waiting list.
fn take_leader(state: &mut State) -> Option<Waker> {
    let index = state.waiting.iter().position(|(ticket, _)| state.is_done(*ticket))?;
    Some(state.waiting.swap_remove(index).1)
}

/// An intent's wait for its commit.
pub(super) struct Durable<'a> {
    acks: &'a Acks,
    ticket: u64,
}

impl Future for Durable<'_> {
    type Output = Result<(), String>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.acks.state);
        if let Some(result) = state.result(self.ticket) {
            // The leader (or any waiter that finds its commit done) wakes the others of the commit, from here.
            let others = state.take_done();
            drop(state);
            others.into_iter().for_each(Waker::wake);
            return Poll::Ready(result);
        }
        let ticket = self.ticket;
        match state.waiting.iter_mut().find(|(waiting, _)| *waiting == ticket) {
            Some((_, waker)) => waker.clone_from(context.waker()),
            None => state.waiting.push((ticket, context.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Durable<'_> {
    /// A waiter that goes (its row cancelled) leaves the list, and wakes the others whose commit is done: it may
    /// have been their leader.
    fn drop(&mut self) {
        let mut state = lock(&self.acks.state);
        state.waiting.retain(|(ticket, _)| *ticket != self.ticket);
        let others = state.take_done();
        drop(state);
        others.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Counted(AtomicUsize);

    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn wakes(counters: &[Arc<Counted>]) -> Vec<usize> {
        counters.iter().map(|counter| counter.0.load(Ordering::SeqCst)).collect()
    }

    fn poll(future: &mut Pin<Box<Durable<'_>>>, counter: &Arc<Counted>) -> Poll<Result<(), String>> {
        let waker = Waker::from(counter.clone());
        future.as_mut().poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_commit_wakes_one_waiter_and_it_wakes_the_others() {
        let acks = Acks::default();
        let counters: Vec<Arc<Counted>> = (0..4).map(|_| Arc::default()).collect();
        let mut futures: Vec<_> = (1..=4).map(|ticket| Box::pin(acks.durable(ticket))).collect();
        for (future, counter) in futures.iter_mut().zip(&counters) {
            assert!(poll(future, counter).is_pending());
        }
        acks.settle(3, &Ok(()));
        assert_eq!(wakes(&counters).iter().sum::<usize>(), 1, "one wake from the recorder's thread for three intents");
        let leader = wakes(&counters).iter().position(|&count| count == 1).unwrap();
        assert!(leader < 3, "the leader is one of the commit's intents");
        assert_eq!(poll(&mut futures[leader], &counters[leader]), Poll::Ready(Ok(())));
        let expected: Vec<usize> = vec![1, 1, 1, 0];
        assert_eq!(wakes(&counters), expected, "the leader woke the other two; the fourth intent still waits");
        for index in 0..3 {
            assert_eq!(poll(&mut futures[index], &counters[index]), Poll::Ready(Ok(())));
        }
        assert!(poll(&mut futures[3], &counters[3]).is_pending());
    }

    #[test]
    fn a_leader_dropped_unpolled_wakes_the_others_and_the_recorder_nudges_again() {
        let acks = Acks::default();
        let counters: Vec<Arc<Counted>> = (0..3).map(|_| Arc::default()).collect();
        let mut futures: Vec<_> = (1..=3).map(|ticket| Some(Box::pin(acks.durable(ticket)))).collect();
        for (future, counter) in futures.iter_mut().zip(&counters) {
            assert!(poll(future.as_mut().unwrap(), counter).is_pending());
        }
        acks.settle(3, &Ok(()));
        let leader = wakes(&counters).iter().position(|&count| count == 1).unwrap();
        futures[leader] = None;
        assert_eq!(wakes(&counters), vec![1, 1, 1], "the dropped leader woke the others");
        // A leader woken but never polled (nor dropped): the recorder's next wake wakes another waiter.
        let later: Vec<Arc<Counted>> = (0..2).map(|_| Arc::default()).collect();
        let mut pending: Vec<_> = (4..=5).map(|ticket| Box::pin(acks.durable(ticket))).collect();
        for (future, counter) in pending.iter_mut().zip(&later) {
            assert!(poll(future, counter).is_pending());
        }
        acks.settle(5, &Ok(()));
        assert_eq!(wakes(&later).iter().sum::<usize>(), 1);
        acks.nudge();
        assert_eq!(wakes(&later), vec![1, 1]);
    }

    #[test]
    fn a_failed_commit_fails_its_intents_and_every_later_one_and_a_stop_fails_the_rest() {
        let acks = Acks::default();
        acks.settle(2, &Ok(()));
        acks.settle(4, &Err("disk full".into()));
        acks.settle(5, &Err("disk full".into()));
        let counter = Arc::new(Counted::default());
        let result = |ticket| poll(&mut Box::pin(acks.durable(ticket)), &counter);
        assert_eq!(result(2), Poll::Ready(Ok(())));
        assert_eq!(result(3), Poll::Ready(Err("disk full".into())));
        assert_eq!(result(5), Poll::Ready(Err("disk full".into())));
        let mut waiting = Box::pin(acks.durable(6));
        assert!(poll(&mut waiting, &counter).is_pending());
        acks.stop();
        assert_eq!(wakes(std::slice::from_ref(&counter)), vec![1]);
        assert_eq!(poll(&mut waiting, &counter), Poll::Ready(Err("the recorder has stopped".into())));
    }
}
