//! Rows that arrive while a job runs (an export's listing, a page at a time): the feed tells the engine's reader
//! when a page is in the state file ([`Announcer`]), and the reader, having read every row there, waits for the next
//! ([`Arrivals`]). The rows themselves go through the state file only, never through here: a row is read from the
//! plan once its page is committed, so a kill leaves no row read that a resume would not find.

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Where the rows' arrival stands.
#[derive(Clone, Debug, PartialEq)]
enum Arrived {
    /// More pages may come.
    Coming,
    /// The last page is in the state file.
    Done,
    /// The feed failed: no more pages this run.
    Failed(String),
}

/// The feed's end: announces each page committed, then the end.
pub struct Announcer(watch::Sender<Arrived>);

/// The reader's end.
pub struct Arrivals(watch::Receiver<Arrived>);

/// A connected pair.
pub fn channel() -> (Announcer, Arrivals) {
    let (sender, receiver) = watch::channel(Arrived::Coming);
    (Announcer(sender), Arrivals(receiver))
}

impl Announcer {
    /// A page's rows are committed to the state file.
    pub fn more(&self) {
        // No reader (the job stopped): nobody to tell.
        let _ = self.0.send(Arrived::Coming);
    }

    /// The last page is committed.
    pub fn done(&self) {
        let _ = self.0.send(Arrived::Done);
    }

    /// No more pages will come this run, because of this.
    pub fn failed(&self, message: String) {
        let _ = self.0.send(Arrived::Failed(message));
    }
}

/// What the reader does after reading every row in the state file.
#[derive(Debug, PartialEq)]
pub enum After {
    /// Read again: more rows may be there (or wait for them first: [`Arrivals::wait`]).
    Wait,
    /// Every row has arrived: the reading is done.
    Done,
    /// The feed failed: stop with this.
    Failed(String),
}

impl Arrivals {
    /// Where things stand, taken BEFORE a pass over the rows: `Done` seen before a pass means that pass read the
    /// last page; a page announced during the pass makes the next [`Arrivals::wait`] return at once.
    pub fn before_pass(&mut self) -> After {
        match &*self.0.borrow_and_update() {
            Arrived::Coming => After::Wait,
            Arrived::Done => After::Done,
            Arrived::Failed(message) => After::Failed(message.clone()),
        }
    }

    /// Blocks (on the reader's blocking thread) until a page is announced since the last [`Arrivals::before_pass`];
    /// `false` when the job stops, the workers are gone, or the feed ended without saying so.
    pub fn wait<T>(&mut self, stop: &CancellationToken, workers: &mpsc::Sender<T>) -> bool {
        let handle = tokio::runtime::Handle::current();
        handle.block_on(async {
            tokio::select! {
                changed = self.0.changed() => changed.is_ok(),
                () = stop.cancelled() => false,
                () = workers.closed() => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_page_announced_during_a_pass_is_not_missed_and_done_ends_the_reading() {
        let (announcer, mut arrivals) = channel();
        let (workers, _receiver) = mpsc::channel::<()>(1);
        let stop = CancellationToken::new();
        assert_eq!(arrivals.before_pass(), After::Wait);
        // Announced while the reader was reading: its wait returns at once.
        announcer.more();
        let reader = tokio::task::spawn_blocking(move || {
            let woke = arrivals.wait(&stop, &workers);
            let after = arrivals.before_pass();
            (woke, after, arrivals, stop, workers)
        });
        let (woke, after, mut arrivals, stop, workers) = reader.await.expect("the reader");
        assert!(woke);
        assert_eq!(after, After::Wait);
        announcer.done();
        assert_eq!(arrivals.before_pass(), After::Done);
        drop(announcer);
        let gone = tokio::task::spawn_blocking(move || arrivals.wait(&stop, &workers));
        assert!(!gone.await.expect("the reader"), "a feed gone without a word ends the wait");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_is_said_and_a_stop_ends_the_wait() {
        let (announcer, mut arrivals) = channel();
        announcer.failed("page 3: 401".into());
        assert_eq!(arrivals.before_pass(), After::Failed("page 3: 401".into()));
        let (workers, _receiver) = mpsc::channel::<()>(1);
        let stop = CancellationToken::new();
        let waiting = {
            let stop = stop.clone();
            tokio::task::spawn_blocking(move || arrivals.wait(&stop, &workers))
        };
        stop.cancel();
        assert!(!waiting.await.expect("the reader"));
        drop(announcer);
    }
}
