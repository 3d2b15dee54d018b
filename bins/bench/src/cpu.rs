//! CPU time spent by the server, its PostgreSQL backends and the load generator itself, read
//! from `/proc/<pid>/stat`. Divided by the requests served it gives a cost per request that,
//! unlike the throughput, hardly depends on what else the machine is doing: the figure to
//! compare when the machine is shared (e.g. with a compiler).

use std::collections::HashMap;
use std::time::Duration;

/// CPU time per process at one moment, by pid.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    ticks: HashMap<u32, u64>,
}

impl Snapshot {
    /// Reads the CPU time of each of `pids` (a process that has exited is left out).
    pub fn of(pids: &[u32]) -> Self {
        Snapshot {
            ticks: pids
                .iter()
                .filter_map(|&pid| process_ticks(pid).map(|t| (pid, t)))
                .collect(),
        }
    }

    /// The CPU time spent since `earlier` by the processes in `self`; one that did not exist
    /// yet then counts from its start.
    pub fn since(&self, earlier: &Snapshot) -> Duration {
        let ticks: u64 = self
            .ticks
            .iter()
            .map(|(pid, now)| now.saturating_sub(earlier.ticks.get(pid).copied().unwrap_or(0)))
            .sum();
        Duration::from_secs_f64(ticks as f64 / ticks_per_second())
    }
}

/// User plus system time of a process, in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`).
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count fields after its closing one.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so fields 14 and 15 are at indices 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `getconf CLK_TCK`: 100 on every Linux this runs on, asked anyway.
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The CPU time of the three parties of a run, per successful operation.
#[derive(Debug, Clone, Copy)]
pub struct PerOperation {
    pub server_us: f64,
    pub postgres_us: Option<f64>,
    pub client_us: f64,
}

impl PerOperation {
    pub fn new(
        server: Duration,
        postgres: Option<Duration>,
        client: Duration,
        operations: u64,
    ) -> Self {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / operations.max(1) as f64;
        PerOperation {
            server_us: per(server),
            postgres_us: postgres.map(per),
            client_us: per(client),
        }
    }

    /// Operations per second the machine's CPUs could serve at this cost, if nothing else ran.
    pub fn capacity(&self, cpus: usize) -> f64 {
        let total = self.server_us + self.postgres_us.unwrap_or(0.0) + self.client_us;
        if total > 0.0 {
            cpus as f64 * 1e6 / total
        } else {
            0.0
        }
    }

    pub fn describe(&self) -> String {
        let postgres = self
            .postgres_us
            .map_or(String::new(), |pg| format!(", PostgreSQL {pg:.0} µs"));
        format!(
            "CPU per request: baton {:.0} µs{postgres}, load generator {:.0} µs",
            self.server_us, self.client_us
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_cpu_time() {
        let me = std::process::id();
        let before = Snapshot::of(&[me]);
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        let after = Snapshot::of(&[me]);
        assert!(after.ticks.contains_key(&me));
        assert!(after.since(&before) >= Duration::ZERO);
        assert!(Snapshot::of(&[u32::MAX]).ticks.is_empty());
    }

    #[test]
    fn capacity_divides_the_cpus_by_the_cost() {
        let cost = PerOperation::new(
            Duration::from_millis(100),
            Some(Duration::from_millis(50)),
            Duration::from_millis(50),
            1000,
        );
        assert_eq!(cost.server_us, 100.0);
        assert_eq!(cost.capacity(2), 10_000.0);
    }
}
