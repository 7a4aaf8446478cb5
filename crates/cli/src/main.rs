//! `signet`: the Vault-compatible CA server, its CLI, and (later) its agent, in one binary.
//!
//! `signet server ...` runs the server; every other verb is a client of a server at
//! `SIGNET_ADDR` / `VAULT_ADDR` / `BAO_ADDR`. Exit codes follow the `vault` CLI: 0 ok, 1 local
//! error (bad flags, unreadable file), 2 API error.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;
mod config;
mod flags;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: under 64-client issuance the profile showed ~16 % of
/// the server's CPU in malloc/free (bench/RESULTS.md); mimalloc's thread-local free lists cut
/// that, and it does not grow a 64 MB arena per blocking-pool thread.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn usage() -> &'static str {
    "Usage: signet <command> [args]

Common commands:
    read        Read data and retrieves secrets
    write       Write data, configuration, and secrets
    delete      Delete secrets and configuration
    list        List data or secrets
    patch       Patch data, configuration, and secrets
    server      Start a signet server
    status      Print seal and HA status

Other commands:
    agent       Run the agent: log in, keep certificates current (-config=FILE)
    audit       Interact with audit devices (enable, disable, list)
    auth        Interact with auth methods (enable, disable, list, tune)
    login       Authenticate locally (-method=token|approle|kubernetes|jwt|cert|azure)
    operator    Perform operator-specific tasks (init, unseal, seal, rotate)
    policy      Interact with policies (write, read, list, delete, fmt)
    secrets     Interact with secrets engines (enable, disable, list, tune, move)
    token       Interact with tokens (create, lookup, renew, revoke, capabilities)
    path-help   Retrieve API help for paths
    version     Print the signet version
"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{}", usage());
        return ExitCode::from(127);
    };
    let rest = &args[1..];
    let code = match cmd.as_str() {
        "server" => commands::server::run(rest),
        "agent" => commands::agent::run(rest),
        "version" | "-version" | "--version" | "-v" => {
            println!("signet v{}", signet_core::VERSION);
            0
        }
        "-h" | "-help" | "--help" | "help" => {
            print!("{}", usage());
            0
        }
        other => match commands::client_command(other, rest) {
            Some(code) => code,
            None => {
                eprintln!("Unknown command: {other}\n");
                eprint!("{}", usage());
                127
            }
        },
    };
    ExitCode::from(code)
}
