//! A second thread for the fork-joins inside a training step, that waits for work by
//! spinning.
//!
//! A step of a stacked student forks a few times per layer (the two directions), each half
//! a few hundred microseconds long. Rayon's idle worker falls asleep after a few dozen
//! yields, and waking it through the kernel took about 130 µs on a 2-core VM, a quarter of
//! each fork. The partner spins between forks and parks only after [`SPIN`] without work,
//! so the second half starts as soon as it reads the flag, without a system call.
//!
//! [`Partner::join`] takes `&mut self`: one fork at a time, and the partner's half may
//! borrow the caller's stack because `join` returns only once that half has finished
//! (also when either half panics; the panic then continues on the caller).

use std::any::Any;
use std::cell::UnsafeCell;
use std::hint::spin_loop;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long the partner spins without work before it parks (between epochs, say).
const SPIN: Duration = Duration::from_millis(5);

const IDLE: u8 = 0;
const READY: u8 = 1;
const DONE: u8 = 2;
const QUIT: u8 = 3;

/// The partner's half of a fork: a type-erased call on the caller's stack.
#[derive(Clone, Copy)]
struct Job {
    run: unsafe fn(*mut ()),
    data: *mut (),
}

struct Shared {
    state: AtomicU8,
    parked: AtomicBool,
    /// Written by the caller before `state` becomes `READY`, read by the partner after.
    job: UnsafeCell<Option<Job>>,
}

// SAFETY: `job` is handed over through `state` (written before the `READY` store, read
// after the partner loads `READY`); the pointers in it are only followed while the
// caller's `join` waits for `DONE`.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// The second thread; see the module docs.
pub struct Partner {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Partner {
    /// Starts the thread.
    pub fn new() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(IDLE),
            parked: AtomicBool::new(false),
            job: UnsafeCell::new(None),
        });
        let theirs = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("distill-partner".into())
            .spawn(move || serve(&theirs))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Runs `a` here and `b` on the partner thread; returns both results.
    pub fn join<A, B, RA, RB>(&mut self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA,
        B: FnOnce() -> RB + Send,
        RB: Send,
    {
        let mut slot = Slot::<B, RB> {
            work: Some(b),
            result: None,
        };
        let job = Job {
            run: run_slot::<B, RB>,
            data: (&raw mut slot).cast(),
        };
        // SAFETY: the partner is idle (the last join waited for DONE), so nothing reads
        // `job` until the READY store below.
        unsafe { *self.shared.job.get() = Some(job) };
        self.shared.state.store(READY, SeqCst);
        if self.shared.parked.load(SeqCst) {
            self.wake();
        }
        let mine = panic::catch_unwind(AssertUnwindSafe(a));
        // `slot` lives on this stack: wait for the partner before anything else, unwinding
        // included.
        let mut spins = 0u32;
        while self.shared.state.load(SeqCst) != DONE {
            spins = spins.wrapping_add(1);
            // Every 0.1–0.3 ms: lets a descheduled partner back on a busy machine.
            if spins.is_multiple_of(1 << 12) {
                thread::yield_now();
            } else {
                spin_loop();
            }
        }
        self.shared.state.store(IDLE, SeqCst);
        let theirs = slot.result.take().expect("the partner ran the job");
        match (mine, theirs) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(p), _) | (_, Err(p)) => panic::resume_unwind(p),
        }
    }

    fn wake(&self) {
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

impl Drop for Partner {
    fn drop(&mut self) {
        self.shared.state.store(QUIT, SeqCst);
        self.wake();
        if let Some(t) = self.thread.take() {
            // The thread catches every panic of a job, so it only ends by QUIT.
            let _ = t.join();
        }
    }
}

/// The partner's half and, once run, its result (or panic).
struct Slot<B, RB> {
    work: Option<B>,
    result: Option<Result<RB, Box<dyn Any + Send>>>,
}

/// # Safety
/// `data` points to a live `Slot<B, RB>` that nothing else touches until `DONE`.
unsafe fn run_slot<B: FnOnce() -> RB, RB>(data: *mut ()) {
    let slot = &mut *data.cast::<Slot<B, RB>>();
    if let Some(work) = slot.work.take() {
        slot.result = Some(panic::catch_unwind(AssertUnwindSafe(work)));
    }
}

/// The partner thread: waits for READY (spinning, then parked), runs the job, says DONE.
fn serve(shared: &Shared) {
    loop {
        let mut idle_since = Instant::now();
        let mut spins = 0u32;
        loop {
            match shared.state.load(SeqCst) {
                READY => break,
                QUIT => return,
                _ => {}
            }
            spins = spins.wrapping_add(1);
            spin_loop();
            if spins.is_multiple_of(1024) && idle_since.elapsed() > SPIN {
                // Parked only if, after saying so, there is still no job: `join` stores
                // READY before it reads `parked`, so one of the two sees the other.
                shared.parked.store(true, SeqCst);
                if !matches!(shared.state.load(SeqCst), READY | QUIT) {
                    thread::park();
                }
                shared.parked.store(false, SeqCst);
                idle_since = Instant::now();
            }
        }
        // SAFETY: READY was stored after the job was written; the caller waits for DONE.
        if let Some(job) = unsafe { (*shared.job.get()).take() } {
            // SAFETY: `job.data` is the caller's `Slot`, live until DONE.
            unsafe { (job.run)(job.data) };
        }
        shared.state.store(DONE, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_halves_run_and_return_their_results() {
        let mut p = Partner::new().unwrap();
        let mut here = vec![0u64; 1000];
        let there: Vec<u64> = (0..1000).collect();
        for round in 0..200u64 {
            let (a, b) = p.join(
                || {
                    here.iter_mut().for_each(|x| *x += round);
                    here[999]
                },
                || there.iter().map(|x| x * round).sum::<u64>(),
            );
            assert_eq!(a, (0..=round).sum::<u64>());
            assert_eq!(b, 499_500 * round);
        }
    }

    #[test]
    fn a_parked_partner_wakes_for_the_next_fork() {
        let mut p = Partner::new().unwrap();
        assert_eq!(p.join(|| 1, || 2), (1, 2));
        // Without work for longer than SPIN the partner parks (however late it is
        // scheduled on a busy machine).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !p.shared.parked.load(SeqCst) {
            assert!(Instant::now() < deadline, "the partner never parked");
            thread::sleep(SPIN);
        }
        assert_eq!(p.join(|| 3, || 4), (3, 4));
    }

    #[test]
    fn a_panic_on_either_side_reaches_the_caller_after_both_halves_end() {
        let mut p = Partner::new().unwrap();
        let finished = AtomicBool::new(false);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            p.join(
                || panic!("mine"),
                || {
                    thread::sleep(Duration::from_millis(20));
                    finished.store(true, SeqCst);
                },
            )
        }));
        assert!(caught.is_err());
        assert!(
            finished.load(SeqCst),
            "the partner's half ended before the unwind"
        );
        let caught = panic::catch_unwind(AssertUnwindSafe(|| p.join(|| (), || panic!("theirs"))));
        let message = caught.unwrap_err();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"theirs"));
        // Still usable.
        assert_eq!(p.join(|| 5, || 6), (5, 6));
    }
}
