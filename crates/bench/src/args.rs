//! Command-line arguments (clap) and the small parsers behind them: durations (`10s`,
//! `500ms`, `1m30s`, plain seconds) and the address/token lookup from the environment
//! (`VAULT_*`, then `BAO_*`), as the `vault` and `bao` CLIs do.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "signet-bench",
    version,
    about = "Closed-loop load generator for Vault-API servers (signet, OpenBao, Vault)",
    long_about = "Closed-loop load generator for Vault-API servers (signet, OpenBao, Vault).\n\n\
`signet-bench setup` configures a fresh server (PKI mount and roles, KV v1, AppRole); \
`signet-bench run WORKLOAD` drives it with N keep-alive HTTP/1.1 clients and reports \
throughput, latency percentiles and errors by status."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run one workload and report throughput, latency and errors.
    Run(RunArgs),
    /// Configure a fresh server for every workload (idempotent on a fresh server).
    Setup(SetupArgs),
}

/// The workloads. Names on the command line are kebab-case (`crl-fetch`, `kv-write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// POST pki/issue/ROLE with a unique common name.
    Issue,
    /// POST pki/sign/ROLE with pre-generated EC P-256 CSRs.
    Sign,
    /// POST pki/revoke for certificates issued before the clock starts.
    Revoke,
    /// GET pki/crl (DER).
    CrlFetch,
    /// POST pki/ocsp with DER requests for pre-issued certificates (half of them revoked).
    Ocsp,
    /// POST pki/certs/search by exact name (signet only; unsupported elsewhere).
    Search,
    /// POST auth/APPROLE/login with one secret ID.
    ApproleLogin,
    /// POST KV/bench/UNIQUE (KV version 1).
    KvWrite,
    /// GET KV/bench-read/... over keys written before the clock starts.
    KvRead,
    /// Per iteration: AppRole login, issue with the new token, renew-self, revoke.
    Mixed,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Issue => "issue",
            Workload::Sign => "sign",
            Workload::Revoke => "revoke",
            Workload::CrlFetch => "crl-fetch",
            Workload::Ocsp => "ocsp",
            Workload::Search => "search",
            Workload::ApproleLogin => "approle-login",
            Workload::KvWrite => "kv-write",
            Workload::KvRead => "kv-read",
            Workload::Mixed => "mixed",
        }
    }
}

/// Where to connect and the mount names every command shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Server address, http://HOST:PORT [env: VAULT_ADDR, BAO_ADDR; default http://127.0.0.1:8200].
    /// `run` also takes several, comma-separated (the nodes of a cluster): the clients are
    /// spread over them evenly.
    #[arg(long)]
    pub addr: Option<String>,
    /// Token for authenticated requests [env: VAULT_TOKEN, BAO_TOKEN]
    #[arg(long)]
    pub token: Option<String>,
    /// PKI mount path.
    #[arg(long, default_value = "pki")]
    pub mount: String,
    /// KV version 1 mount path.
    #[arg(long, default_value = "kv")]
    pub kv_mount: String,
    /// AppRole auth mount path.
    #[arg(long, default_value = "approle")]
    pub approle_mount: String,
    /// AppRole role name.
    #[arg(long, default_value = "bench")]
    pub approle_role: String,
    /// Per-request timeout.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print a machine-readable JSON result on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The workload.
    #[arg(value_enum)]
    pub workload: Workload,
    #[command(flatten)]
    pub common: Common,
    /// Concurrent clients, each with its own keep-alive connection (closed loop).
    #[arg(short = 'c', long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,
    /// How long to run (10s when neither --duration nor --requests is given).
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many operations (with --duration: whichever comes first).
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// PKI role for issue, sign, revoke, ocsp, search and mixed (a stored role for revoke,
    /// ocsp, search and mixed).
    #[arg(long, default_value = "ec")]
    pub role: String,
    /// TTL asked for each certificate.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// CSRs generated before the clock starts (sign).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub csrs: u32,
    /// Certificates issued before the clock starts (revoke). Default: --requests when given,
    /// otherwise as many as can be issued in twice --duration (at most 5 minutes; the run
    /// ends early, and says so, if they are all revoked before the time is up).
    #[arg(long)]
    pub pool: Option<usize>,
    /// Runtime worker threads of the generator (1 keeps it on one core).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,
    /// PID of the server under test (Linux): report the CPU time it used while the clock ran.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// No progress line on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Exit with status 2 when any operation failed.
    #[arg(long)]
    pub fail_on_errors: bool,
}

impl RunArgs {
    /// The run's time limit: --duration, or 10 s when no limit at all was given.
    pub fn time_limit(&self) -> Option<Duration> {
        match (self.duration, self.requests) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_secs(10)),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub common: Common,
    /// A second PKI mount whose CRL holds exactly --crl-entries revoked certificates (for
    /// `run crl-fetch --mount pki-crl`: the same CRL size on every server).
    #[arg(long, default_value = "pki-crl")]
    pub crl_mount: String,
    /// Revoked certificates on the --crl-mount CRL (0: no such mount).
    #[arg(long, default_value_t = 1000)]
    pub crl_entries: usize,
}

/// A duration: Go-style units (`ns`, `us`, `ms`, `s`, `m`, `h`, combinable: `1m30s`, `1.5s`)
/// or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return secs_to_duration(secs, s);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {s:?} has a number without a unit"))?;
        if num_len == 0 {
            return Err(format!("bad duration {s:?}"));
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("bad duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    secs_to_duration(total, s)
}

fn secs_to_duration(secs: f64, s: &str) -> Result<Duration, String> {
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The first of `flag`, then each environment variable in order, that is set and not empty.
pub fn first_set(
    flag: Option<&str>,
    vars: &[&str],
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    flag.map(str::to_string)
        .into_iter()
        .chain(vars.iter().filter_map(|v| env(v)))
        .find(|v| !v.is_empty())
}

impl Common {
    pub fn resolved_addr(&self) -> String {
        first_set(self.addr.as_deref(), &["VAULT_ADDR", "BAO_ADDR"], |v| {
            std::env::var(v).ok()
        })
        .unwrap_or_else(|| "http://127.0.0.1:8200".into())
    }

    pub fn resolved_token(&self) -> Option<String> {
        first_set(self.token.as_deref(), &["VAULT_TOKEN", "BAO_TOKEN"], |v| {
            std::env::var(v).ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("signet-bench").chain(args.iter().copied()))
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("0.25").unwrap(), Duration::from_millis(250));
        for bad in ["", "s", "10x", "1s2", "-1s", "abc", "1e99"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn run_arguments() {
        let cli = parse(&[
            "run",
            "issue",
            "-c",
            "64",
            "-d",
            "2s",
            "--addr",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--role",
            "ec-nostore",
            "--json",
        ])
        .unwrap();
        let Cmd::Run(r) = cli.cmd else {
            panic!("not run")
        };
        assert_eq!(r.workload, Workload::Issue);
        assert_eq!(r.concurrency, 64);
        assert_eq!(r.time_limit(), Some(Duration::from_secs(2)));
        assert_eq!(r.requests, None);
        assert_eq!(r.role, "ec-nostore");
        assert!(r.common.json);
        assert_eq!(r.common.resolved_addr(), "http://127.0.0.1:9");
        assert_eq!(r.common.resolved_token().as_deref(), Some("t"));
        assert_eq!(r.common.mount, "pki");
        assert_eq!(r.threads, 1);

        let Cmd::Run(r) = parse(&["run", "crl-fetch", "-n", "100"]).unwrap().cmd else {
            panic!("not run")
        };
        assert_eq!(r.workload, Workload::CrlFetch);
        assert_eq!(r.requests, Some(100));
        assert_eq!(r.time_limit(), None);
        assert_eq!(r.concurrency, 8);

        let Cmd::Run(r) = parse(&["run", "kv-read"]).unwrap().cmd else {
            panic!("not run")
        };
        assert_eq!(r.time_limit(), Some(Duration::from_secs(10)));

        for w in [
            "issue",
            "sign",
            "revoke",
            "crl-fetch",
            "ocsp",
            "search",
            "approle-login",
            "kv-write",
            "kv-read",
            "mixed",
        ] {
            let Cmd::Run(r) = parse(&["run", w]).unwrap().cmd else {
                panic!("not run")
            };
            assert_eq!(r.workload.name(), w);
        }

        assert!(parse(&["run", "nope"]).is_err());
        assert!(parse(&["run", "issue", "-c", "0"]).is_err());
        assert!(parse(&["run", "issue", "-n", "0"]).is_err());
        assert!(parse(&["run", "issue", "-d", "forever"]).is_err());
        assert!(parse(&["run"]).is_err());
    }

    #[test]
    fn setup_arguments() {
        let Cmd::Setup(s) = parse(&["setup", "--addr", "http://h:1", "--kv-mount", "kv1"])
            .unwrap()
            .cmd
        else {
            panic!("not setup")
        };
        assert_eq!(s.common.kv_mount, "kv1");
        assert_eq!(s.common.approle_role, "bench");
        assert_eq!(s.crl_mount, "pki-crl");
        assert_eq!(s.crl_entries, 1000);
    }

    #[test]
    fn token_and_address_lookup_order() {
        let env = |v: &str| match v {
            "VAULT_TOKEN" => Some(String::new()),
            "BAO_TOKEN" => Some("bao".to_string()),
            _ => None,
        };
        assert_eq!(
            first_set(Some("flag"), &["VAULT_TOKEN", "BAO_TOKEN"], env).as_deref(),
            Some("flag")
        );
        // An empty VAULT_TOKEN does not hide BAO_TOKEN.
        assert_eq!(
            first_set(None, &["VAULT_TOKEN", "BAO_TOKEN"], env).as_deref(),
            Some("bao")
        );
        assert_eq!(first_set(None, &["X"], env), None);
    }
}
