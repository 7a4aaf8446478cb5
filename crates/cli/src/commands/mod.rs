//! One module per CLI verb; each exposes `run(args) -> exit code`.

pub mod server;

/// Dispatches the client verbs; `None` for an unknown verb.
pub fn client_command(_cmd: &str, _args: &[String]) -> Option<u8> {
    None
}
