//! Audit devices. `file` writes JSON lines to a file (or to standard output with
//! `file_path = "stdout"`), flushed before the request proceeds, and reopens its file on
//! SIGHUP so logrotate can move it away. Socket and syslog devices are still to come.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{json, Map, Value};
use signet_core::audit::AuditDevice;

/// Options of a `file` device.
#[derive(Debug, Clone)]
pub struct FileOptions {
    pub file_path: String,
    pub mode: u32,
    pub log_raw: bool,
    pub hmac_accessor: bool,
    pub prefix: String,
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
            path: format!("{}/", name.trim_matches('/')),
            description: description.to_string(),
            opts,
            sink: Mutex::new(sink),
        })
    }

    /// Reopens the file (after logrotate moved it).
    pub fn reopen(&self) -> std::io::Result<()> {
        let sink = open(&self.opts.file_path, self.opts.mode)?;
        if let Ok(mut s) = self.sink.lock() {
            *s = sink;
        }
        Ok(())
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
        m.insert("log_raw".into(), json!(self.opts.log_raw.to_string()));
        m.insert(
            "hmac_accessor".into(),
            json!(self.opts.hmac_accessor.to_string()),
        );
        if !self.opts.prefix.is_empty() {
            m.insert("prefix".into(), json!(self.opts.prefix));
        }
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
}
