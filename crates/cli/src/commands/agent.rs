//! `signet agent -config FILE [-once] [-exit-after-auth]`: runs the agent (crates/agent);
//! SIGHUP reloads the configuration, SIGTERM/SIGINT stop it.
//! Exit code 1 when the configuration or the first run fails.

use std::path::PathBuf;

use crate::flags::{self, Kind};

const FLAGS: &[(&str, Kind)] = &[
    ("config", Kind::Value),
    ("once", Kind::Bool),
    ("exit-after-auth", Kind::Bool),
    ("log-level", Kind::Value),
    ("log-format", Kind::Value),
];

/// Entry point of `signet agent`.
pub fn run(args: &[String]) -> u8 {
    let parsed = match flags::parse(args, FLAGS) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    super::server::init_logging(
        parsed.get("log-level").unwrap_or("info"),
        parsed.get("log-format").unwrap_or("standard"),
    );
    let Some(path) = parsed.get("config").map(PathBuf::from) else {
        eprintln!("Error: -config=FILE is required");
        return 1;
    };
    // Checked before the runtime starts, so a bad file is exit 1 with its line.
    if let Err(e) = signet_agent::config::AgentConfig::load(&path) {
        eprintln!("Error loading the configuration: {e}");
        return 1;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error starting the runtime: {e}");
            return 1;
        }
    };
    let opts = signet_agent::RunOptions {
        once: parsed.bool("once"),
        exit_after_auth: parsed.bool("exit-after-auth"),
    };
    match runtime.block_on(signet_agent::serve(path, opts)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}
