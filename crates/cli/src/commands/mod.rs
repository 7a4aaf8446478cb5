//! One module per verb family; each verb is `fn(args) -> exit code`.

pub mod agent;
mod audit;
mod common;
mod identity;
pub mod migrate;
mod mounts;
mod rw;
pub mod server;
mod status;

use mounts::Which;

/// Dispatches the client verbs; `None` for an unknown verb.
pub fn client_command(cmd: &str, args: &[String]) -> Option<u8> {
    let sub = |args: &[String]| -> (Option<String>, Vec<String>) {
        (
            args.first().cloned(),
            args.get(1..).map(<[String]>::to_vec).unwrap_or_default(),
        )
    };
    Some(match cmd {
        "read" => rw::read(args),
        "write" => rw::write(args),
        "list" => rw::list(args),
        "delete" => rw::delete(args),
        "patch" => rw::patch(args),
        "path-help" => rw::path_help(args),
        "status" => status::status(args),
        "operator" => status::operator(args),
        "secrets" => {
            let (s, rest) = sub(args);
            match s.as_deref() {
                Some("enable") => mounts::enable(&rest, Which::Secrets),
                Some("disable") => mounts::disable(&rest, Which::Secrets),
                Some("list") => mounts::list(&rest, Which::Secrets),
                Some("tune") => mounts::tune(&rest, Which::Secrets),
                Some("move") => mounts::move_mount(&rest),
                _ => {
                    eprintln!("Usage: signet secrets <enable|disable|list|tune|move> [options]");
                    1
                }
            }
        }
        "auth" => {
            let (s, rest) = sub(args);
            match s.as_deref() {
                Some("enable") => mounts::enable(&rest, Which::Auth),
                Some("disable") => mounts::disable(&rest, Which::Auth),
                Some("list") => mounts::list(&rest, Which::Auth),
                Some("tune") => mounts::tune(&rest, Which::Auth),
                _ => {
                    eprintln!("Usage: signet auth <enable|disable|list|tune> [options]");
                    1
                }
            }
        }
        "audit" => {
            let (s, rest) = sub(args);
            match s.as_deref() {
                Some("enable") => audit::enable(&rest),
                Some("disable") => audit::disable(&rest),
                Some("list") => audit::list(&rest),
                _ => {
                    eprintln!("Usage: signet audit <enable|disable|list> [options]");
                    1
                }
            }
        }
        "login" => identity::login(args),
        "token" => identity::token(args),
        "policy" => identity::policy(args),
        // The old verbs seed 002 uses.
        "mount" => mounts::enable(args, Which::Secrets),
        "mount-tune" => mounts::tune(args, Which::Secrets),
        "unmount" => mounts::disable(args, Which::Secrets),
        "mounts" => mounts::list(args, Which::Secrets),
        "remount" => mounts::move_mount(args),
        "policy-write" => identity::policy_write(args),
        "token-create" => identity::token_create(args),
        _ => return None,
    })
}
