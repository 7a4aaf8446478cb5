//! Audit devices: `file`, `socket` and `syslog`, built from Vault's option names by
//! [`build`] (the server configuration and `sys/audit/:path` share it).
//!
//! * `file` writes JSON lines to a file (or to standard output with `file_path = "stdout"`),
//!   flushed before the request proceeds, and reopens its file on SIGHUP so logrotate can
//!   move it away.
//! * `socket` sends each line over TCP, UDP or a Unix stream socket (`address`,
//!   `socket_type`, `write_timeout`). A write that fails drops the connection and reconnects
//!   once; if that fails too the write fails, so with no other device the request is refused
//!   (fail closed). The next request connects again: a peer that comes back is used again
//!   without a restart.
//! * `syslog` sends each line as one RFC 3164 datagram to the local syslog socket
//!   (`facility`, `tag`; `socket_path`, a signet extension, defaults to `/dev/log`).
//!   Written by hand: the message format is one line of text, and the crates that do it pull
//!   in their own network stacks for remote syslog that signet does not need.
//!
//! Writes are synchronous and bounded by the socket write timeout (2 s by default): an entry
//! is handed to the OS before the request goes on, as the fail-closed rule requires.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};
use signet_core::audit::{AuditDevice, AuditFactory};

/// Options every device type shares.
#[derive(Debug, Clone)]
pub struct Common {
    pub log_raw: bool,
    pub hmac_accessor: bool,
    pub prefix: String,
}

/// Options of a `file` device.
#[derive(Debug, Clone)]
pub struct FileOptions {
    pub file_path: String,
    pub mode: u32,
    pub log_raw: bool,
    pub hmac_accessor: bool,
    pub prefix: String,
}

fn opt(options: &Map<String, Value>, key: &str) -> Option<String> {
    options.get(key).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn flag(options: &Map<String, Value>, key: &str, default: bool) -> Result<bool, String> {
    match opt(options, key).as_deref() {
        None | Some("") => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(format!("invalid value {v:?} for {key}: use true or false")),
    }
}

fn common(options: &Map<String, Value>) -> Result<Common, String> {
    if let Some(f) = opt(options, "format") {
        if !f.is_empty() && f != "json" {
            return Err(format!("audit format {f:?} is not supported: use json"));
        }
    }
    Ok(Common {
        log_raw: flag(options, "log_raw", false)?,
        hmac_accessor: flag(options, "hmac_accessor", true)?,
        prefix: opt(options, "prefix").unwrap_or_default(),
    })
}

fn duration(
    options: &Map<String, Value>,
    key: &str,
    default: Duration,
) -> Result<Duration, String> {
    match opt(options, key) {
        None => Ok(default),
        Some(s) if s.is_empty() => Ok(default),
        Some(s) => signet_types::duration::parse_duration_str(&s)
            .map(Duration::from_secs)
            .map_err(|e| format!("invalid {key} {s:?}: {e}")),
    }
}

/// Every option name a device type accepts (the configuration rejects others).
pub fn known_options(kind: &str) -> Option<&'static [&'static str]> {
    const FILE: [&str; 8] = [
        "file_path",
        "path",
        "mode",
        "log_raw",
        "hmac_accessor",
        "format",
        "prefix",
        "elide_list_responses",
    ];
    const SOCKET: [&str; 9] = [
        "address",
        "socket_type",
        "write_timeout",
        "log_raw",
        "hmac_accessor",
        "format",
        "prefix",
        "elide_list_responses",
        "fallback",
    ];
    const SYSLOG: [&str; 9] = [
        "facility",
        "tag",
        "socket_path",
        "log_raw",
        "hmac_accessor",
        "format",
        "prefix",
        "elide_list_responses",
        "fallback",
    ];
    match kind {
        "file" => Some(&FILE),
        "socket" => Some(&SOCKET),
        "syslog" => Some(&SYSLOG),
        _ => None,
    }
}

/// Builds a device of type `kind` at `path` from Vault's options. Fails (nothing opened
/// stays behind) when the destination cannot be opened or reached.
pub fn build(
    kind: &str,
    path: &str,
    description: &str,
    options: &Map<String, Value>,
) -> Result<Arc<dyn AuditDevice>, String> {
    let known = known_options(kind).ok_or_else(|| {
        format!("unknown audit device type {kind:?}: signet supports file, socket and syslog")
    })?;
    if let Some(bad) = options.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("unknown option {bad:?} for a {kind} audit device"));
    }
    let c = common(options)?;
    Ok(match kind {
        "file" => {
            let file_path = opt(options, "file_path")
                .or_else(|| opt(options, "path"))
                .filter(|p| !p.is_empty())
                .ok_or("file_path is required")?;
            let mode = match opt(options, "mode") {
                None => 0o600,
                Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                    .map_err(|_| format!("invalid mode {m:?}: use an octal like \"0600\""))?,
            };
            Arc::new(
                FileDevice::open(
                    path,
                    description,
                    FileOptions {
                        file_path: file_path.clone(),
                        mode,
                        log_raw: c.log_raw,
                        hmac_accessor: c.hmac_accessor,
                        prefix: c.prefix,
                    },
                )
                .map_err(|e| format!("cannot open {file_path}: {e}"))?,
            )
        }
        "socket" => Arc::new(SocketDevice::open(path, description, options, c)?),
        _ => Arc::new(SyslogDevice::open(path, description, options, c)?),
    })
}

/// The factory the binary hands the core for `sys/audit/:path`.
pub fn factory() -> AuditFactory {
    Arc::new(build)
}

fn device_path(name: &str) -> String {
    format!("{}/", name.trim_matches('/'))
}

fn common_options(m: &mut Map<String, Value>, c: &Common) {
    m.insert("log_raw".into(), json!(c.log_raw.to_string()));
    m.insert("hmac_accessor".into(), json!(c.hmac_accessor.to_string()));
    if !c.prefix.is_empty() {
        m.insert("prefix".into(), json!(c.prefix));
    }
}

enum Sink {
    Stdout,
    File(BufWriter<File>),
}

/// The `file` device.
pub struct FileDevice {
    path: String,
    description: String,
    opts: FileOptions,
    sink: Mutex<Sink>,
}

fn open(path: &str, mode: u32) -> std::io::Result<Sink> {
    if path == "stdout" {
        return Ok(Sink::Stdout);
    }
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    if let Some(dir) = PathBuf::from(path).parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("directory {} does not exist", dir.display()),
            ));
        }
    }
    Ok(Sink::File(BufWriter::new(o.open(path)?)))
}

impl FileDevice {
    /// Opens the device; fails when the file cannot be opened, so a device that cannot write
    /// is never half-enabled.
    pub fn open(name: &str, description: &str, opts: FileOptions) -> std::io::Result<FileDevice> {
        let sink = open(&opts.file_path, opts.mode)?;
        Ok(FileDevice {
            path: device_path(name),
            description: description.to_string(),
            opts,
            sink: Mutex::new(sink),
        })
    }
}

impl AuditDevice for FileDevice {
    fn path(&self) -> &str {
        &self.path
    }

    fn kind(&self) -> &str {
        "file"
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn options(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("file_path".into(), json!(self.opts.file_path));
        m.insert("mode".into(), json!(format!("{:o}", self.opts.mode)));
        common_options(
            &mut m,
            &Common {
                log_raw: self.opts.log_raw,
                hmac_accessor: self.opts.hmac_accessor,
                prefix: self.opts.prefix.clone(),
            },
        );
        m
    }

    fn write(&self, line: &[u8]) -> std::io::Result<()> {
        let mut s = self
            .sink
            .lock()
            .map_err(|_| std::io::Error::other("audit sink lock poisoned"))?;
        match &mut *s {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(self.opts.prefix.as_bytes())?;
                out.write_all(line)?;
                out.flush()
            }
            Sink::File(f) => {
                f.write_all(self.opts.prefix.as_bytes())?;
                f.write_all(line)?;
                f.flush()
            }
        }
    }

    fn hmac_accessor(&self) -> bool {
        self.opts.hmac_accessor
    }

    fn log_raw(&self) -> bool {
        self.opts.log_raw
    }

    /// Reopens the file (after logrotate moved it).
    fn reopen(&self) -> std::io::Result<()> {
        let sink = open(&self.opts.file_path, self.opts.mode)?;
        if let Ok(mut s) = self.sink.lock() {
            *s = sink;
        }
        Ok(())
    }
}

enum Conn {
    Tcp(TcpStream),
    Udp(UdpSocket),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Conn {
    /// Whether a stream's peer has closed its end (an orderly close is otherwise noticed only
    /// after a write was accepted by the kernel and lost).
    fn peer_closed(&self) -> bool {
        fn closed(r: std::io::Result<usize>) -> bool {
            match r {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            }
        }
        let mut b = [0u8; 1];
        match self {
            Conn::Tcp(s) => {
                if s.set_nonblocking(true).is_err() {
                    return true;
                }
                let c = closed(s.peek(&mut b));
                c || s.set_nonblocking(false).is_err()
            }
            Conn::Udp(_) => false,
            #[cfg(unix)]
            Conn::Unix(s) => {
                use std::io::Read as _;
                if s.set_nonblocking(true).is_err() {
                    return true;
                }
                // A Unix stream has no peek in std; audit peers never send, so a read of
                // data would be a protocol error anyway.
                let c = closed((&*s).read(&mut b));
                c || s.set_nonblocking(false).is_err()
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(bytes),
            Conn::Udp(s) => s.send(bytes).map(|_| ()),
            #[cfg(unix)]
            Conn::Unix(s) => s.write_all(bytes),
        }
    }
}

/// The `socket` device.
pub struct SocketDevice {
    path: String,
    description: String,
    address: String,
    socket_type: String,
    timeout: Duration,
    common: Common,
    conn: Mutex<Option<Conn>>,
}

impl SocketDevice {
    fn open(
        name: &str,
        description: &str,
        options: &Map<String, Value>,
        common: Common,
    ) -> Result<SocketDevice, String> {
        let address = opt(options, "address")
            .filter(|a| !a.is_empty())
            .ok_or("address is required")?;
        let socket_type = opt(options, "socket_type").unwrap_or_else(|| "tcp".into());
        if !matches!(socket_type.as_str(), "tcp" | "udp" | "unix") {
            return Err(format!(
                "invalid socket_type {socket_type:?}: use tcp, udp or unix"
            ));
        }
        let dev = SocketDevice {
            path: device_path(name),
            description: description.to_string(),
            address,
            socket_type,
            timeout: duration(options, "write_timeout", Duration::from_secs(2))?,
            common,
            conn: Mutex::new(None),
        };
        // Vault refuses to enable a socket device it cannot reach.
        let conn = dev
            .connect()
            .map_err(|e| format!("cannot connect to {}: {e}", dev.address))?;
        if let Ok(mut c) = dev.conn.lock() {
            *c = Some(conn);
        }
        Ok(dev)
    }

    fn connect(&self) -> std::io::Result<Conn> {
        match self.socket_type.as_str() {
            "udp" => {
                let target = self
                    .address
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| std::io::Error::other("address resolves to nothing"))?;
                let bind = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(target)?;
                s.set_write_timeout(Some(self.timeout))?;
                Ok(Conn::Udp(s))
            }
            #[cfg(unix)]
            "unix" => {
                let s = std::os::unix::net::UnixStream::connect(&self.address)?;
                s.set_write_timeout(Some(self.timeout))?;
                Ok(Conn::Unix(s))
            }
            _ => {
                let mut last = std::io::Error::other("address resolves to nothing");
                for a in self.address.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&a, self.timeout) {
                        Ok(s) => {
                            s.set_write_timeout(Some(self.timeout))?;
                            s.set_nodelay(true)?;
                            return Ok(Conn::Tcp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }
}

impl AuditDevice for SocketDevice {
    fn path(&self) -> &str {
        &self.path
    }

    fn kind(&self) -> &str {
        "socket"
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn options(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("address".into(), json!(self.address));
        m.insert("socket_type".into(), json!(self.socket_type));
        m.insert(
            "write_timeout".into(),
            json!(signet_types::format_go_duration(self.timeout.as_secs())),
        );
        common_options(&mut m, &self.common);
        m
    }

    fn write(&self, line: &[u8]) -> std::io::Result<()> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| std::io::Error::other("audit socket lock poisoned"))?;
        let mut bytes = self.common.prefix.as_bytes().to_vec();
        bytes.extend_from_slice(line);
        if let Some(c) = guard.as_mut() {
            if !c.peer_closed() && c.send(&bytes).is_ok() {
                return Ok(());
            }
        }
        // The peer went away (or never came back): one fresh attempt, then fail.
        *guard = None;
        let mut c = self.connect()?;
        c.send(&bytes)?;
        *guard = Some(c);
        Ok(())
    }

    fn hmac_accessor(&self) -> bool {
        self.common.hmac_accessor
    }

    fn log_raw(&self) -> bool {
        self.common.log_raw
    }

    fn reopen(&self) -> std::io::Result<()> {
        let c = self.connect()?;
        if let Ok(mut g) = self.conn.lock() {
            *g = Some(c);
        }
        Ok(())
    }
}

/// Syslog facilities by name (RFC 3164 numbering).
fn facility_code(name: &str) -> Option<u8> {
    Some(match name.to_uppercase().as_str() {
        "KERN" => 0,
        "USER" => 1,
        "MAIL" => 2,
        "DAEMON" => 3,
        "AUTH" => 4,
        "SYSLOG" => 5,
        "LPR" => 6,
        "NEWS" => 7,
        "UUCP" => 8,
        "CRON" => 9,
        "AUTHPRIV" => 10,
        "FTP" => 11,
        "LOCAL0" => 16,
        "LOCAL1" => 17,
        "LOCAL2" => 18,
        "LOCAL3" => 19,
        "LOCAL4" => 20,
        "LOCAL5" => 21,
        "LOCAL6" => 22,
        "LOCAL7" => 23,
        _ => return None,
    })
}

/// The `syslog` device.
pub struct SyslogDevice {
    path: String,
    description: String,
    facility: String,
    tag: String,
    socket_path: String,
    priority: u8,
    common: Common,
    #[cfg(unix)]
    sock: Mutex<std::os::unix::net::UnixDatagram>,
}

impl SyslogDevice {
    #[cfg(unix)]
    fn open(
        name: &str,
        description: &str,
        options: &Map<String, Value>,
        common: Common,
    ) -> Result<SyslogDevice, String> {
        let facility = opt(options, "facility").unwrap_or_else(|| "AUTH".into());
        let code = facility_code(&facility)
            .ok_or_else(|| format!("unknown syslog facility {facility:?}"))?;
        let tag = opt(options, "tag").unwrap_or_else(|| "signet".into());
        let socket_path = opt(options, "socket_path").unwrap_or_else(|| "/dev/log".into());
        let sock = Self::connect(&socket_path)
            .map_err(|e| format!("cannot reach syslog at {socket_path}: {e}"))?;
        Ok(SyslogDevice {
            path: device_path(name),
            description: description.to_string(),
            facility,
            tag,
            socket_path,
            // Severity 6: informational.
            priority: code * 8 + 6,
            common,
            sock: Mutex::new(sock),
        })
    }

    #[cfg(not(unix))]
    fn open(
        _name: &str,
        _description: &str,
        _options: &Map<String, Value>,
        _common: Common,
    ) -> Result<SyslogDevice, String> {
        Err("the syslog audit device needs a Unix system".into())
    }

    #[cfg(unix)]
    fn connect(path: &str) -> std::io::Result<std::os::unix::net::UnixDatagram> {
        let s = std::os::unix::net::UnixDatagram::unbound()?;
        s.connect(path)?;
        s.set_write_timeout(Some(Duration::from_secs(2)))?;
        Ok(s)
    }
}

impl AuditDevice for SyslogDevice {
    fn path(&self) -> &str {
        &self.path
    }

    fn kind(&self) -> &str {
        "syslog"
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn options(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("facility".into(), json!(self.facility));
        m.insert("tag".into(), json!(self.tag));
        if self.socket_path != "/dev/log" {
            m.insert("socket_path".into(), json!(self.socket_path));
        }
        common_options(&mut m, &self.common);
        m
    }

    #[cfg(unix)]
    fn write(&self, line: &[u8]) -> std::io::Result<()> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let mut msg = format!(
            "<{}>{}[{}]: {}",
            self.priority,
            self.tag,
            std::process::id(),
            self.common.prefix
        )
        .into_bytes();
        msg.extend_from_slice(line);
        let mut s = self
            .sock
            .lock()
            .map_err(|_| std::io::Error::other("audit syslog lock poisoned"))?;
        if s.send(&msg).is_ok() {
            return Ok(());
        }
        // syslogd restarted: reconnect once.
        *s = Self::connect(&self.socket_path)?;
        s.send(&msg).map(|_| ())
    }

    #[cfg(not(unix))]
    fn write(&self, _line: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("syslog needs a Unix system"))
    }

    fn hmac_accessor(&self) -> bool {
        self.common.hmac_accessor
    }

    fn log_raw(&self) -> bool {
        self.common.log_raw
    }
}
