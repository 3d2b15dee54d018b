//! A barrier for tasks of one test, without an async runtime.

use std::sync::{Mutex, PoisonError};
use std::task::{Poll, Waker};

/// Lets `n` tasks wait until all of them have arrived, round after round, as
/// `tokio::sync::Barrier` does, on any executor (the suite's concurrent tasks are joined
/// futures of one test).
#[derive(Debug)]
pub struct Barrier {
    n: usize,
    state: Mutex<Round>,
}

#[derive(Debug, Default)]
struct Round {
    arrived: usize,
    /// Counts the rounds completed; a waiter is released when it moves on.
    generation: u64,
    waiting: Vec<Waker>,
}

impl Barrier {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            state: Mutex::new(Round::default()),
        }
    }

    /// Returns once `n` tasks are waiting, the last of them first.
    pub async fn wait(&self) {
        let generation = {
            let mut round = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            round.arrived += 1;
            if round.arrived >= self.n {
                round.arrived = 0;
                round.generation += 1;
                round.waiting.drain(..).for_each(Waker::wake);
                return;
            }
            round.generation
        };
        std::future::poll_fn(|cx| {
            let mut round = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if round.generation == generation {
                round.waiting.push(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }
}
