//! Where a metadata request's storage work runs.
//!
//! Owns one decision for the series, label-name and label-value endpoints: run the work on the async
//! worker that received the request, or hand it to tokio's blocking pool. Handing over costs two thread
//! wake-ups (the pool thread, then the worker that writes the response), about 0.05 ms on the 2-core
//! machines Ember is measured on, which was a fifth of a series listing's time over HTTP. Running inline
//! costs nothing but occupies the worker, so only one request at a time may do it: every other worker stays
//! free for network I/O, remote write and scrapes, and concurrent requests go to the pool.
//!
//! PromQL queries do not come here: they stay on the pool so that a client going away cancels them (a
//! future running work inline is not polled until the work ends). How the work itself is split over
//! threads is the engine's business (rayon).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

/// The server's one inline slot.
#[derive(Default)]
pub struct Offload {
    /// Set while a request's work runs on an async worker.
    inline_busy: AtomicBool,
}

/// Frees the slot when the inline work ends, by return or by panic.
struct InlineSlot<'a>(&'a AtomicBool);

impl Drop for InlineSlot<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Offload {
    fn take_slot(&self) -> Option<InlineSlot<'_>> {
        self.inline_busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| InlineSlot(&self.inline_busy))
    }

    /// Runs `f` inline when no other request is doing so, else on the blocking pool. A panic in `f`
    /// becomes an `Err` with its message either way, as from a panicking pool task.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        if let Some(slot) = self.take_slot() {
            let out = catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(&*p));
            drop(slot);
            return out;
        }
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| match e.try_into_panic() {
                Ok(p) => panic_message(&*p),
                Err(e) => e.to_string(),
            })
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let text = p
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    format!("task panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_request_runs_inline_and_a_concurrent_one_on_the_pool() {
        let off = Arc::new(Offload::default());
        let (release, held) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let off = off.clone();
            async move {
                let task = tokio::task::id();
                let ran_in = off
                    .run(move || {
                        held.recv().unwrap();
                        tokio::task::try_id()
                    })
                    .await
                    .unwrap();
                (task, ran_in)
            }
        });
        while !off.inline_busy.load(Ordering::Acquire) {
            tokio::task::yield_now().await;
        }
        let here = tokio::task::try_id();
        let second = off.run(tokio::task::try_id).await.unwrap();
        assert!(
            second.is_some() && second != here,
            "the second ran on a pool task"
        );
        release.send(()).unwrap();
        let (task, ran_in) = first.await.unwrap();
        assert_eq!(ran_in, Some(task), "the first ran inside its own task");
        assert!(!off.inline_busy.load(Ordering::Acquire), "slot freed");
        // Free again: the next request runs inline.
        assert_eq!(off.run(tokio::task::try_id).await.unwrap(), here);
    }

    #[tokio::test]
    async fn a_panic_inline_is_an_error_and_frees_the_slot() {
        let off = Offload::default();
        let err = off.run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(err.contains("boom"), "{err}");
        assert!(!off.inline_busy.load(Ordering::Acquire));
        assert_eq!(off.run(|| 7).await, Ok(7));
    }
}
