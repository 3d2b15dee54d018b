//! The load a heartbeat reports: CPU and memory read from `/proc` on Linux (a few small file
//! reads, no extra dependency), zeros where `/proc` does not exist.

/// One heartbeat's figures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Load {
    pub cpu_percent: f64,
    pub memory_mb: f64,
    pub memory_percent: f64,
}

/// CPU use is a difference between two readings of `/proc/stat`: the sampler keeps the last.
#[derive(Debug, Default)]
pub struct LoadSampler {
    last_cpu: Option<CpuTimes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuTimes {
    idle: u64,
    total: u64,
}

impl LoadSampler {
    /// The load now. The first CPU figure is the average since boot; later ones cover the time
    /// since the previous sample.
    pub fn sample(&mut self) -> Load {
        let cpu = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| parse_cpu(&text));
        let cpu_percent = match (self.last_cpu, cpu) {
            (Some(before), Some(now)) if now.total > before.total => busy_percent(
                now.idle.saturating_sub(before.idle),
                now.total - before.total,
            ),
            (_, Some(now)) => busy_percent(now.idle, now.total),
            _ => 0.0,
        };
        if cpu.is_some() {
            self.last_cpu = cpu;
        }
        let (memory_mb, memory_percent) = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| parse_memory(&text))
            .unwrap_or((0.0, 0.0));
        Load {
            cpu_percent,
            memory_mb,
            memory_percent,
        }
    }
}

fn busy_percent(idle: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let busy = total.saturating_sub(idle) as f64;
    round1(busy * 100.0 / total as f64)
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The aggregate `cpu` line: user nice system idle iowait irq softirq steal (guest time is
/// already counted in user).
fn parse_cpu(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        idle,
        total: fields.iter().sum(),
    })
}

/// Used memory (total less available) in MB and as a percentage of the total.
fn parse_memory(meminfo: &str) -> Option<(f64, f64)> {
    let kb = |key: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
    };
    let total = kb("MemTotal:")?;
    let available = kb("MemAvailable:")?;
    if total <= 0.0 {
        return None;
    }
    let used = (total - available).max(0.0);
    Some((round1(used / 1024.0), round1(used * 100.0 / total)))
}

/// This machine's name, for the heartbeat; `None` when it cannot be read.
pub fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_and_meminfo() {
        let stat = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(
            parse_cpu(stat),
            Some(CpuTimes {
                idle: 800,
                total: 1000
            })
        );
        assert_eq!(busy_percent(800, 1000), 20.0);
        let meminfo = "MemTotal:       2048000 kB\nMemFree:  1 kB\nMemAvailable:   1024000 kB\n";
        assert_eq!(parse_memory(meminfo), Some((1000.0, 50.0)));
        assert_eq!(parse_memory("nothing"), None);
    }

    #[test]
    fn samples_are_in_range() {
        let mut sampler = LoadSampler::default();
        for _ in 0..2 {
            let load = sampler.sample();
            assert!((0.0..=100.0).contains(&load.cpu_percent), "{load:?}");
            assert!((0.0..=100.0).contains(&load.memory_percent), "{load:?}");
            assert!(load.memory_mb >= 0.0);
        }
    }
}
