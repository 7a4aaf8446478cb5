//! The result of a run: latency summary from the HDR histogram (recorded in microseconds,
//! reported in milliseconds), throughput, errors by key, and its two renderings — a human
//! table and the JSON document `--json` prints (the compare script reads it).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, from 1 µs to one hour, 3 significant digits.
pub fn new_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
}

/// Percentiles of one run, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Microseconds to milliseconds, kept to the microsecond.
fn ms(us: f64) -> f64 {
    us.round() / 1000.0
}

pub fn summarize(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        count: h.len(),
        min_ms: ms(h.min() as f64),
        mean_ms: ms(h.mean()),
        p50_ms: ms(h.value_at_quantile(0.50) as f64),
        p90_ms: ms(h.value_at_quantile(0.90) as f64),
        p99_ms: ms(h.value_at_quantile(0.99) as f64),
        max_ms: ms(h.max() as f64),
    }
}

/// What happened before the clock started.
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    pub what: String,
    pub seconds: f64,
}

/// One run's result; this is also the `--json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: &'static str,
    pub addr: String,
    pub concurrency: u32,
    /// Set (with the reason) when the server does not offer the workload's endpoint; then
    /// nothing was measured.
    pub unsupported: Option<String>,
    /// Wall time from the first request to the last response.
    pub elapsed_s: f64,
    /// Operations attempted (an operation of `mixed` is four requests).
    pub ops: u64,
    /// Operations that succeeded (every request 2xx).
    pub ok: u64,
    /// HTTP requests sent.
    pub requests: u64,
    /// Successful operations per second.
    pub ops_per_s: f64,
    /// Requests per second (all of them).
    pub requests_per_s: f64,
    /// Latency of every operation, failed ones included.
    pub latency: Latency,
    /// Failed operations by key: the HTTP status (`500`), prefixed with the step for `mixed`
    /// (`issue 403`), or `connect` / `connection` / `timeout`.
    pub errors: BTreeMap<String, u64>,
    pub error_count: u64,
    /// One server answer (or transport error) per error key, the first seen.
    pub error_examples: BTreeMap<String, String>,
    /// CPU time (utime + stime) the server process used while the clock ran, with
    /// `--server-pid` on Linux: in clock ticks, and in seconds at USER_HZ = 100.
    pub server_cpu_ticks: Option<u64>,
    pub server_cpu_s: Option<f64>,
    /// Why the run stopped before its limit (a revoke pool used up), if it did.
    pub ended_early: Option<String>,
    pub prepared: Option<Prepared>,
}

impl Report {
    pub fn unsupported(workload: &'static str, addr: &str, concurrency: u32, why: String) -> Self {
        Report {
            workload,
            addr: addr.to_string(),
            concurrency,
            unsupported: Some(why),
            elapsed_s: 0.0,
            ops: 0,
            ok: 0,
            requests: 0,
            ops_per_s: 0.0,
            requests_per_s: 0.0,
            latency: Latency::default(),
            errors: BTreeMap::new(),
            error_count: 0,
            error_examples: BTreeMap::new(),
            server_cpu_ticks: None,
            server_cpu_s: None,
            ended_early: None,
            prepared: None,
        }
    }

    /// Fills the rates from the counts and the elapsed time.
    pub fn with_rates(mut self) -> Self {
        if self.elapsed_s > 0.0 {
            self.ops_per_s = round1(self.ok as f64 / self.elapsed_s);
            self.requests_per_s = round1(self.requests as f64 / self.elapsed_s);
        }
        self.error_count = self.errors.values().sum();
        self
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(&str, String)> = vec![
            ("workload", self.workload.to_string()),
            ("server", self.addr.clone()),
            ("clients", self.concurrency.to_string()),
        ];
        if let Some(why) = &self.unsupported {
            rows.push(("result", format!("unsupported by this server: {why}")));
            return render(&rows);
        }
        if let Some(p) = &self.prepared {
            rows.push(("prepared", format!("{} in {:.1} s", p.what, p.seconds)));
        }
        rows.push(("elapsed", format!("{:.2} s", self.elapsed_s)));
        rows.push((
            "operations",
            format!("{} ({} ok, {} failed)", self.ops, self.ok, self.error_count),
        ));
        rows.push(("ops/s", format!("{:.1}", self.ops_per_s)));
        if self.requests != self.ops {
            rows.push((
                "requests",
                format!("{} ({:.1}/s)", self.requests, self.requests_per_s),
            ));
        }
        let l = &self.latency;
        rows.push((
            "latency ms",
            format!(
                "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (min {:.2}, mean {:.2})",
                l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.min_ms, l.mean_ms
            ),
        ));
        let errors = if self.errors.is_empty() {
            "none".to_string()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        rows.push(("errors", errors));
        for (k, v) in &self.error_examples {
            rows.push(("", format!("{k}: {v}")));
        }
        if let Some(cpu) = self.server_cpu_s {
            let per = if self.requests > 0 {
                cpu * 1000.0 / self.requests as f64
            } else {
                0.0
            };
            rows.push((
                "server CPU",
                format!("{cpu:.2} s ({per:.3} ms per request)"),
            ));
        }
        if let Some(e) = &self.ended_early {
            rows.push(("ended early", e.clone()));
        }
        render(&rows)
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn render(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_latencies() {
        let mut h = new_histogram().unwrap();
        // 1..=1000 ms, one each.
        for i in 1..=1000u64 {
            h.record(i * 1000).unwrap();
        }
        let s = summarize(&h);
        assert_eq!(s.count, 1000);
        assert!((s.min_ms - 1.0).abs() < 0.01, "{s:?}");
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p90_ms - 900.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
        assert!((s.mean_ms - 500.5).abs() < 1.0, "{s:?}");
        assert_eq!(summarize(&new_histogram().unwrap()), Latency::default());
    }

    #[test]
    fn histogram_takes_an_hour_and_merges() {
        let mut a = new_histogram().unwrap();
        let mut b = new_histogram().unwrap();
        a.record(3_600_000_000).unwrap();
        b.record(250).unwrap();
        a.add(&b).unwrap();
        let s = summarize(&a);
        assert_eq!(s.count, 2);
        assert!((s.min_ms - 0.25).abs() < 0.001, "{s:?}");
        assert!(s.max_ms > 3_590_000.0, "{s:?}");
    }

    #[test]
    fn rates_table_and_json() {
        let mut errors = BTreeMap::new();
        errors.insert("500".to_string(), 3);
        errors.insert("connection".to_string(), 1);
        let r = Report {
            elapsed_s: 2.0,
            ops: 204,
            ok: 200,
            requests: 204,
            errors,
            ..Report::unsupported("issue", "http://x:1", 8, String::new())
        };
        let r = Report {
            unsupported: None,
            ..r
        }
        .with_rates();
        assert_eq!(r.ops_per_s, 100.0);
        assert_eq!(r.requests_per_s, 102.0);
        assert_eq!(r.error_count, 4);
        let t = r.table();
        assert!(t.contains("ops/s       100.0"), "{t}");
        assert!(t.contains("500: 3, connection: 1"), "{t}");
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["workload"], "issue");
        assert_eq!(j["errors"]["500"], 3);
        assert_eq!(j["unsupported"], serde_json::Value::Null);
        assert_eq!(j["latency"]["p99_ms"], 0.0);

        let u = Report::unsupported("search", "http://x:1", 8, "HTTP 404".into());
        assert!(u.table().contains("unsupported by this server: HTTP 404"));
    }
}
