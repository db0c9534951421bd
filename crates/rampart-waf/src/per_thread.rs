//! One copy of a compiled regex per request thread.
//!
//! A `regex` value keeps a pool of search caches with a fast path for one owner thread; every
//! other thread takes a lock to borrow a cache and return it. The gateway evaluates every rule
//! on every worker thread, so with one shared value all but one worker would take that slow path
//! for each of the thousand regex searches of a request. Copies share the compiled automata
//! (an `Arc` inside the regex) and differ only in their pool, so a copy per thread costs a few
//! hundred bytes and each thread finds its own copy's fast path.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Copies beyond this many threads would be rarely used; threads past it share copies (still
/// correct, only slower).
const MAX_COPIES: usize = 16;

#[derive(Debug, Clone)]
pub(crate) struct PerThread<T> {
    copies: Box<[T]>,
}

impl<T: Clone> PerThread<T> {
    pub(crate) fn new(value: T) -> Self {
        let n = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_COPIES);
        PerThread {
            copies: vec![value; n].into_boxed_slice(),
        }
    }

    /// The calling thread's copy.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        &self.copies[thread_index() % self.copies.len()]
    }
}

/// A small number per thread, handed out in the order threads first evaluate rules.
fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|i| *i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_keeps_its_copy_and_copies_agree() {
        let re = PerThread::new(regex::bytes::Regex::new("a+b").unwrap());
        let mine = re.get() as *const _ as usize;
        assert_eq!(mine, re.get() as *const _ as usize);
        let results: Vec<bool> = std::thread::scope(|s| {
            (0..4)
                .map(|_| s.spawn(|| re.get().is_match(b"xaab")))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect()
        });
        assert!(results.into_iter().all(|m| m));
    }
}
