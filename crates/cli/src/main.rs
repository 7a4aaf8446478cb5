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
    operator    Perform operator-specific tasks (init, unseal, seal, rotate, migrate)
    policy      Interact with policies (write, read, list, delete, fmt)
    secrets     Interact with secrets engines (enable, disable, list, tune, move)
    token       Interact with tokens (create, lookup, renew, revoke, capabilities)
    path-help   Retrieve API help for paths
    version     Print the signet version
"
}

/// `<command> [<subcommand>] -h` (or `-help`, `--help`), as the `vault` CLI answers it: the
/// command's usage on stdout, exit code 0.
fn command_usage(cmd: &str, sub: Option<&str>) -> Option<&'static str> {
    if (cmd, sub) == ("operator", Some("migrate")) {
        return Some(commands::migrate::USAGE);
    }
    Some(match cmd {
        "read" => "Usage: signet read [options] PATH\n\n  Reads data from signet at the given path. Options: -format=table|json|yaml, -field=NAME,\n  plus the global -address, -ca-cert, -client-cert, -client-key, -tls-server-name.\n",
        "write" => "Usage: signet write [options] PATH [DATA K=V...]\n\n  Writes data to signet at the given path. K=@file reads a value from a file, K=- from\n  stdin; `-` alone reads a JSON object from stdin. Options: -format, -field, -force.\n",
        "list" => "Usage: signet list [options] PATH\n\n  Lists the keys under a path. Options: -format.\n",
        "delete" => "Usage: signet delete [options] PATH\n\n  Deletes data at the given path.\n",
        "patch" => "Usage: signet patch [options] PATH [DATA K=V...]\n\n  Merges data into what is at the path (HTTP PATCH).\n",
        "server" => "Usage: signet server [options]\n\n  Starts a signet server. Options: -config=FILE (repeatable), -dev, -dev-root-token-id=ID,\n  -dev-listen-address=ADDR, -dev-tls, -dev-tls-cert-dir=DIR, -dev-no-store-token,\n  -log-level=LEVEL, -log-format=text|json.\n",
        "agent" => "Usage: signet agent -config=FILE [-once] [-exit-after-auth]\n\n  Logs in (auto_auth), then keeps the configured certificate, trust and template blocks\n  current. SIGHUP reloads the configuration; SIGTERM stops.\n",
        "status" => "Usage: signet status [options]\n\n  Prints the seal status. Exit code 2 when sealed.\n",
        "login" => "Usage: signet login [options] [TOKEN | K=V...]\n\n  Authenticates and stores the token. Options: -method=token|approle|kubernetes|jwt|cert|azure,\n  -path=MOUNT, -no-store, -token-only.\n",
        "path-help" => "Usage: signet path-help [options] PATH\n\n  Prints the API help of a path.\n",
        "operator" => "Usage: signet operator <subcommand> [options]\n\n  Subcommands: init, unseal, seal, rotate, migrate (copy the storage to another backend;\n  stop the server first).\n",
        "secrets" => "Usage: signet secrets <subcommand> [options] [ARGS]\n\n  Subcommands: enable, disable, list, tune, move.\n",
        "auth" => "Usage: signet auth <subcommand> [options] [ARGS]\n\n  Subcommands: enable, disable, list, tune.\n",
        "policy" => "Usage: signet policy <subcommand> [options] [ARGS]\n\n  Subcommands: write, read, list, delete, fmt.\n",
        "token" => "Usage: signet token <subcommand> [options] [ARGS]\n\n  Subcommands: create, lookup, renew, revoke, capabilities.\n",
        "audit" => "Usage: signet audit <subcommand> [options] [ARGS]\n\n  Subcommands: enable, disable, list.\n",
        _ => return None,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{}", usage());
        return ExitCode::from(127);
    };
    let rest = &args[1..];
    let asks_help = rest
        .iter()
        .take_while(|a| a.as_str() != "--")
        .any(|a| matches!(a.as_str(), "-h" | "-help" | "--help"));
    if asks_help {
        if let Some(text) = command_usage(cmd, rest.first().map(String::as_str)) {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
    }
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
