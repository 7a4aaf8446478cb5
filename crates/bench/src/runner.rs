//! The closed loop: N clients, each on its own connection, each sending its next operation as
//! soon as the previous one is answered, until the time limit or the operation budget is
//! reached. Each client records into its own histogram (no shared lock on the hot path); the
//! histograms are merged at the end. A progress line goes to stderr once a second.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use hdrhistogram::Histogram;

use crate::report::new_histogram;
use crate::workload::{Client, Ctx, Prepared};

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub duration: Option<Duration>,
    pub max_ops: Option<u64>,
}

/// The merged result of all clients.
pub struct Outcome {
    pub hist: Histogram<u64>,
    pub ops: u64,
    pub ok: u64,
    pub requests: u64,
    pub errors: BTreeMap<String, u64>,
    /// One description per error key (the first seen).
    pub examples: BTreeMap<String, String>,
    pub elapsed: Duration,
    pub ended_early: Option<String>,
}

#[derive(Default)]
struct Shared {
    started: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    exhausted: AtomicBool,
}

struct ClientResult {
    hist: Histogram<u64>,
    ops: u64,
    ok: u64,
    requests: u64,
    errors: BTreeMap<String, u64>,
    examples: BTreeMap<String, String>,
}

pub async fn run(
    ctx: Arc<Ctx>,
    prepared: Arc<Prepared>,
    concurrency: u32,
    limits: Limits,
    progress: bool,
) -> anyhow::Result<Outcome> {
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let deadline = limits.duration.map(|d| start + d);
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..concurrency as usize {
        let ctx = ctx.clone();
        let prepared = prepared.clone();
        let shared = shared.clone();
        let hist = new_histogram()?;
        tasks.spawn(async move {
            let mut client = Client {
                conn: ctx.conn_for(id),
                id,
                seq: 0,
            };
            let mut r = ClientResult {
                hist,
                ops: 0,
                ok: 0,
                requests: 0,
                errors: BTreeMap::new(),
                examples: BTreeMap::new(),
            };
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d)
                    || shared.exhausted.load(Ordering::Relaxed)
                {
                    break;
                }
                if let Some(n) = limits.max_ops {
                    if shared.started.fetch_add(1, Ordering::Relaxed) >= n {
                        break;
                    }
                }
                let t0 = Instant::now();
                let out = prepared.op(&ctx, &mut client).await;
                if out.exhausted {
                    shared.exhausted.store(true, Ordering::Relaxed);
                    break;
                }
                let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                r.hist.saturating_record(us.max(1));
                r.ops += 1;
                r.requests += u64::from(out.requests);
                match out.error {
                    None => r.ok += 1,
                    Some((key, detail)) => {
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                        r.examples.entry(key.clone()).or_insert(detail);
                        *r.errors.entry(key).or_insert(0) += 1;
                    }
                }
                shared.done.fetch_add(1, Ordering::Relaxed);
            }
            r
        });
    }
    let ticker = progress.then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut last = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done = shared.done.load(Ordering::Relaxed);
                let failed = shared.failed.load(Ordering::Relaxed);
                let mut err = std::io::stderr().lock();
                // Progress is best effort: a closed stderr must not end the run.
                let _ = writeln!(
                    err,
                    "[{:>6.1}s] {done} ops, {} ops/s, {failed} errors",
                    start.elapsed().as_secs_f64(),
                    done - last,
                );
                last = done;
            }
        })
    });
    let mut total = Outcome {
        hist: new_histogram()?,
        ops: 0,
        ok: 0,
        requests: 0,
        errors: BTreeMap::new(),
        examples: BTreeMap::new(),
        elapsed: Duration::ZERO,
        ended_early: None,
    };
    while let Some(r) = tasks.join_next().await {
        let r = r.map_err(|e| anyhow!("a client task failed: {e}"))?;
        total
            .hist
            .add(&r.hist)
            .map_err(|e| anyhow!("merging histograms: {e}"))?;
        total.ops += r.ops;
        total.ok += r.ok;
        total.requests += r.requests;
        for (k, v) in r.errors {
            *total.errors.entry(k).or_insert(0) += v;
        }
        for (k, v) in r.examples {
            total.examples.entry(k).or_insert(v);
        }
    }
    total.elapsed = start.elapsed();
    if let Some(t) = ticker {
        t.abort();
    }
    if shared.exhausted.load(Ordering::Relaxed) {
        total.ended_early = Some(format!(
            "the prepared pool was used up after {:.2} s (give --pool or --requests)",
            total.elapsed.as_secs_f64()
        ));
    }
    Ok(total)
}
