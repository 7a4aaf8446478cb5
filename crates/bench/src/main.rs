//! `signet-bench`: a closed-loop load generator for Vault-API servers, and the setup that
//! configures a fresh server for it. See `bench/README.md` for the workloads and
//! `bench/compare.sh` for the side-by-side comparison that drives it.
//!
//! The generator runs on one runtime thread by default (one core), so on a small machine it
//! leaves the rest to the server under test; `--threads` gives it more.

mod args;
mod http;
mod ocsp;
mod proc;
mod report;
mod runner;
mod setup;
mod workload;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use clap::Parser;

use args::{Cli, Cmd, RunArgs, SetupArgs};
use report::{summarize, Report};
use workload::{Ctx, PoolSize, Prep, PrepArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.cmd {
        Cmd::Run(r) => r.threads as usize,
        Cmd::Setup(_) => 1,
    };
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let result = rt
        .context("cannot start the runtime")
        .and_then(|rt| rt.block_on(dispatch(cli)));
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "signet-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Run(a) => run(a).await,
        Cmd::Setup(a) => setup(a).await,
    }
}

fn need_token(common: &args::Common) -> anyhow::Result<String> {
    common
        .resolved_token()
        .ok_or_else(|| anyhow!("no token: give --token or set VAULT_TOKEN or BAO_TOKEN"))
}

async fn setup(a: SetupArgs) -> anyhow::Result<ExitCode> {
    let addr = a.common.resolved_addr();
    let token = need_token(&a.common)?;
    let target = http::Target::resolve(&addr).await?;
    let res = setup::setup(
        target,
        a.common.timeout,
        &addr,
        &token,
        &a.common,
        &a.crl_mount,
        a.crl_entries,
    )
    .await?;
    let mut out = std::io::stdout().lock();
    if a.common.json {
        serde_json::to_writer(&mut out, &res)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}: configured", res.addr)?;
        for s in &res.steps {
            writeln!(out, "  {s}")?;
        }
        writeln!(out, "role_id   {}", res.role_id)?;
        writeln!(out, "secret_id {}", res.secret_id)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let addr = a.common.resolved_addr();
    let token = need_token(&a.common)?;
    // `--addr A,B,C`: the nodes of one cluster; preparation talks to the first.
    let mut targets = Vec::new();
    for one in addr.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        targets.push(http::Target::resolve(one).await?);
    }
    let target = targets
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no server address given"))?;
    let nonce = format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            & 0xffff_ffff_ffff
    );
    let ctx = Arc::new(Ctx {
        target,
        targets,
        timeout: a.common.timeout,
        token,
        mount: a.common.mount.clone(),
        kv_mount: a.common.kv_mount.clone(),
        approle_mount: a.common.approle_mount.clone(),
        approle_role: a.common.approle_role.clone(),
        role: a.role.clone(),
        ttl_json: serde_json::to_string(&a.ttl)?,
        nonce,
    });
    let limit = a.time_limit();
    let pool = match (a.pool, a.requests, limit) {
        (Some(n), _, _) => PoolSize::Count(n),
        (None, Some(n), _) => PoolSize::Count(usize::try_from(n).unwrap_or(usize::MAX)),
        // Revocation usually runs about twice as fast as issuance.
        (None, None, Some(d)) => PoolSize::Time((d * 2).min(std::time::Duration::from_secs(300))),
        (None, None, None) => PoolSize::Count(1000),
    };
    let prep_args = PrepArgs {
        concurrency: a.concurrency,
        csrs: a.csrs,
        pool,
    };
    let name = a.workload.name();
    if !a.quiet {
        let _ = writeln!(std::io::stderr().lock(), "{name}: preparing against {addr}");
    }
    let prepared = match workload::prepare(&ctx, a.workload, &prep_args)
        .await
        .with_context(|| format!("preparing {name}"))?
    {
        Prep::Ready(p) => Arc::new(p),
        Prep::Unsupported(why) => {
            let r = Report::unsupported(name, &addr, a.concurrency, why);
            emit(&r, a.common.json)?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    if !a.quiet {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{name}: prepared {} in {:.1} s; running {} clients",
            prepared.what,
            prepared.seconds,
            a.concurrency
        );
    }
    let cpu_before = a.server_pid.and_then(proc::cpu_ticks);
    let out = runner::run(
        ctx,
        prepared.clone(),
        a.concurrency,
        runner::Limits {
            duration: limit,
            max_ops: a.requests,
        },
        !a.quiet,
    )
    .await?;
    let server_cpu_ticks = match (cpu_before, a.server_pid.and_then(proc::cpu_ticks)) {
        (Some(b), Some(e)) => Some(e.saturating_sub(b)),
        _ => None,
    };
    let report = Report {
        workload: name,
        addr,
        concurrency: a.concurrency,
        unsupported: None,
        elapsed_s: (out.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        ops: out.ops,
        ok: out.ok,
        requests: out.requests,
        ops_per_s: 0.0,
        requests_per_s: 0.0,
        latency: summarize(&out.hist),
        errors: out.errors,
        error_count: 0,
        error_examples: out.examples,
        server_cpu_ticks,
        server_cpu_s: server_cpu_ticks.map(|t| t as f64 / proc::TICKS_PER_SECOND),
        ended_early: out.ended_early,
        prepared: Some(report::Prepared {
            what: prepared.what.clone(),
            seconds: (prepared.seconds * 100.0).round() / 100.0,
        }),
    }
    .with_rates();
    emit(&report, a.common.json)?;
    if a.fail_on_errors && report.error_count > 0 {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn emit(r: &Report, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, r)?;
        writeln!(out)?;
    } else {
        out.write_all(r.table().as_bytes())?;
    }
    out.flush()?;
    Ok(())
}
