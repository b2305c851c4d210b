//! Thread pools for the core's parallel work, shared by size so that opening many files does
//! not start many pools.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

type Pools = Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>;

/// The shared rayon pool with `threads` workers (default: one per core).
pub fn thread_pool(threads: Option<usize>) -> Result<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Pools> = OnceLock::new();
    let threads = match threads {
        Some(0) => return Err(Error::InvalidArgument("threads must be at least 1".into())),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut pools = POOLS
        .get_or_init(Pools::default)
        .lock()
        .expect("pool registry poisoned");
    if let Some(pool) = pools.get(&threads) {
        return Ok(pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("edgewise-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} threads: {e}")))?;
    pools.insert(threads, pool.clone());
    Ok(pool)
}
