//! The CPU time of the server under test, from `/proc/PID/stat` (Linux), sampled when the
//! clock starts and stops so preparation is not counted: utime + stime of all the process's
//! threads, in clock ticks.

/// USER_HZ: the unit of `/proc/PID/stat` times, 100 on every Linux architecture in use.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime from the text of `/proc/PID/stat`. The command name (field 2) may contain
/// spaces and parentheses, so fields are counted after its closing parenthesis.
pub fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The process's CPU ticks now, if it can be read.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .as_deref()
        .and_then(stat_ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines() {
        let line = "4242 (bao server (x)) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 567 0 0 20 0 12 0 100 0 0";
        assert_eq!(stat_ticks(line), Some(1234 + 567));
        assert_eq!(stat_ticks("1 (x) S 1 2"), None);
        assert_eq!(stat_ticks("garbage"), None);
        let me = cpu_ticks(std::process::id());
        assert!(me.is_some());
    }
}
