//! Writing what the agent renders: every file is written to a temporary file in the same
//! directory, fsynced, given its mode and owner, then renamed over the destination, so a reader
//! sees the old file or the new one, never half of one. A set of files (certificate, key,
//! chain) is replaced one rename after another only once every temporary file is complete;
//! readers that need cert and key together should read `bundle_file`, which holds both.
//!
//! Owners are names looked up in `/etc/passwd` and `/etc/group` (or numeric ids): reading
//! those files avoids the unsafe libc calls that getpwnam would need.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Ownership and permissions of written files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Perms {
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// Parses an octal mode ("0600", "600").
pub fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim().trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("invalid mode {s:?}: use an octal like \"0600\""))
}

fn lookup_id(db: &str, name: &str) -> Result<u32, String> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    let text = std::fs::read_to_string(db).map_err(|e| format!("cannot read {db}: {e}"))?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let _ = f.next();
            let id = f.next()?.parse::<u32>().ok()?;
            (n == name).then_some(id)
        })
        .next()
        .ok_or_else(|| {
            format!(
                "unknown {} {name:?}",
                if db.ends_with("group") {
                    "group"
                } else {
                    "user"
                }
            )
        })
}

/// Resolves owner and group names to ids (checked at startup so a typo fails early).
pub fn resolve_owner(perms: &Perms) -> Result<(Option<u32>, Option<u32>), String> {
    let uid = perms
        .owner
        .as_deref()
        .map(|o| lookup_id("/etc/passwd", o))
        .transpose()?;
    let gid = perms
        .group
        .as_deref()
        .map(|g| lookup_id("/etc/group", g))
        .transpose()?;
    Ok((uid, gid))
}

/// A file written but not yet moved into place.
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
}

/// Writes `content` to a temporary file next to `dest`, fsynced, with the permissions.
pub fn stage(
    dest: &Path,
    content: &[u8],
    perms: &Perms,
    create_dirs: bool,
) -> Result<Staged, String> {
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    if !dir.exists() {
        if create_dirs {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        } else {
            return Err(format!("directory {} does not exist", dir.display()));
        }
    }
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.signet-{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(perms.mode.unwrap_or(0o600));
        }
        let mut f = o.open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Some(m) = perms.mode {
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(m))?;
            }
        }
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", dest.display()));
    }
    #[cfg(unix)]
    {
        let (uid, gid) = match resolve_owner(perms) {
            Ok(ids) => ids,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if uid.is_some() || gid.is_some() {
            if let Err(e) = std::os::unix::fs::chown(&tmp, uid, gid) {
                let _ = std::fs::remove_file(&tmp);
                return Err(format!("cannot set the owner of {}: {e}", dest.display()));
            }
        }
    }
    Ok(Staged {
        tmp,
        dest: dest.to_path_buf(),
    })
}

impl Staged {
    /// Moves the file into place and syncs its directory.
    pub fn commit(self) -> Result<(), String> {
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| {
            let _ = std::fs::remove_file(&self.tmp);
            format!("cannot replace {}: {e}", self.dest.display())
        })?;
        if let Some(dir) = self.dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Removes the temporary file (another file of the set failed).
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Writes a set of files: all are staged first; only when every one is complete are they
/// moved into place. On any failure nothing changes.
pub fn write_set(
    files: &[(PathBuf, Vec<u8>)],
    perms: &Perms,
    create_dirs: bool,
) -> Result<(), String> {
    let mut staged = Vec::new();
    for (dest, content) in files {
        match stage(dest, content, perms, create_dirs) {
            Ok(s) => staged.push(s),
            Err(e) => {
                for s in staged {
                    s.abandon();
                }
                return Err(e);
            }
        }
    }
    for s in staged {
        s.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn set_is_written_whole_or_not_at_all() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.pem");
        let b = d.path().join("b.pem");
        let perms = Perms {
            mode: Some(0o640),
            ..Default::default()
        };
        write_set(
            &[(a.clone(), b"A1".to_vec()), (b.clone(), b"B1".to_vec())],
            &perms,
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"A1");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&a).unwrap().permissions().mode() & 0o777,
                0o640
            );
        }
        // The second file's directory is missing: nothing is replaced, no temp file stays.
        let bad = d.path().join("missing").join("c.pem");
        assert!(write_set(
            &[(a.clone(), b"A2".to_vec()), (bad, b"C".to_vec())],
            &perms,
            false
        )
        .is_err());
        assert_eq!(std::fs::read(&a).unwrap(), b"A1");
        let leftovers: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        assert_eq!(parse_mode("0600").unwrap(), 0o600);
        assert!(parse_mode("rw").is_err());
        assert!(resolve_owner(&Perms {
            owner: Some("no-such-user-xyz".into()),
            ..Default::default()
        })
        .is_err());
        assert_eq!(
            resolve_owner(&Perms {
                owner: Some("0".into()),
                ..Default::default()
            })
            .unwrap(),
            (Some(0), None)
        );
    }
}
