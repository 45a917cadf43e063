//! A global allocator that counts live bytes and their peak, so the runner can measure what
//! one input made a reader allocate.
//!
//! A reader that asks for far more than its budget would abort the whole process before the
//! runner could look (an allocation of terabytes fails, and a failed allocation aborts), so
//! the allocator itself enforces a hard cap: past it, it writes the current input where the
//! runner told it to, says so on stderr and aborts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

/// Counts allocations, then passes them to the system allocator. Install it in a binary with
/// `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static HARD_CAP: AtomicUsize = AtomicUsize::new(usize::MAX);
static INSTALLED: AtomicBool = AtomicBool::new(false);
static TRIPPED: AtomicBool = AtomicBool::new(false);

/// The input running now and where to save it if it trips the hard cap.
static CURRENT: Mutex<Option<(PathBuf, Vec<u8>)>> = Mutex::new(None);

impl CountingAlloc {
    fn grew(size: usize) {
        let live = LIVE.fetch_add(size, Relaxed).saturating_add(size);
        PEAK.fetch_max(live, Relaxed);
        if live > HARD_CAP.load(Relaxed) {
            tripped(live);
        }
    }
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Relaxed);
        Self::grew(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::grew(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            Self::grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

/// Saves the current input and aborts; runs inside the allocator, so it first lifts the cap
/// (the saving allocates too) and runs at most once.
#[cold]
fn tripped(live: usize) {
    HARD_CAP.store(usize::MAX, Relaxed);
    if TRIPPED.swap(true, Relaxed) {
        return;
    }
    if let Ok(guard) = CURRENT.try_lock() {
        if let Some((path, input)) = guard.as_ref() {
            let saved = path
                .parent()
                .map(std::fs::create_dir_all)
                .transpose()
                .and_then(|_| std::fs::write(path, input));
            eprintln!(
                "fuzz: an input made the reader hold {live} bytes, past the hard cap; \
                 input saved at {} ({saved:?}); aborting",
                path.display()
            );
        }
    }
    std::process::abort();
}

/// Whether [`CountingAlloc`] is this process's global allocator (it has seen an allocation).
pub fn installed() -> bool {
    INSTALLED.load(Relaxed)
}

/// Bytes allocated and not yet freed.
pub fn live() -> usize {
    LIVE.load(Relaxed)
}

/// Starts a measurement: the peak restarts at the live bytes now, which it returns.
pub fn start_measure() -> usize {
    let now = LIVE.load(Relaxed);
    PEAK.store(now, Relaxed);
    now
}

/// Most bytes live since [`start_measure`] returned `base`, above `base`.
pub fn peak_since(base: usize) -> usize {
    PEAK.load(Relaxed).saturating_sub(base)
}

/// Arms the hard cap at `cap` live bytes for `input`, saved to `save_to` if it trips.
pub fn arm(cap: usize, input: &[u8], save_to: PathBuf) {
    if let Ok(mut current) = CURRENT.lock() {
        *current = Some((save_to, input.to_vec()));
    }
    HARD_CAP.store(cap, Relaxed);
}

/// Lifts the hard cap.
pub fn disarm() {
    HARD_CAP.store(usize::MAX, Relaxed);
}
