//! The Prometheus text exposition format, version 0.0.4, written by hand: `# HELP` and `# TYPE`
//! once per family, then its samples, with label values and help text escaped as the format
//! asks. It is small enough that a client library would bring more than it saves.

use std::fmt::Write as _;

/// The `Content-Type` of a scrape's answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family's `# TYPE` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One histogram series: the upper bounds of its buckets with the number of observations in
/// each bucket alone (not cumulated; the writer cumulates them), the observations above the
/// last bound, and the sum of all observations.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample<'a> {
    pub bounds: &'a [f64],
    /// One count per bound, plus one last count for the observations above every bound.
    pub counts: &'a [u64],
    pub sum: f64,
}

/// A document being written. Families are written whole, one after the other: the format
/// requires each family's lines to be contiguous.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: writes its `# HELP` and `# TYPE` lines. `name` must be a valid metric
    /// name; the callers pass constants, which the unit tests check.
    pub fn family<'a>(&'a mut self, name: &'a str, kind: MetricType, help: &str) -> Family<'a> {
        debug_assert!(is_valid_metric_name(name), "invalid metric name {name:?}");
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        Family {
            out: &mut self.out,
            name,
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The samples of one family, written right after its header.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
}

impl Family<'_> {
    /// A counter or gauge sample with an integer value.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: u64) -> &mut Self {
        write_series(self.out, self.name, "", labels, None);
        let _ = writeln!(self.out, " {value}");
        self
    }

    /// A histogram series: `_bucket` lines with cumulative counts for every bound and `+Inf`,
    /// then `_sum` and `_count` (which equals the `+Inf` bucket by construction).
    pub fn histogram(
        &mut self,
        labels: &[(&str, &str)],
        sample: &HistogramSample<'_>,
    ) -> &mut Self {
        let mut cumulative = 0_u64;
        for (index, count) in sample.counts.iter().enumerate() {
            cumulative = cumulative.saturating_add(*count);
            let le = match sample.bounds.get(index) {
                Some(bound) => format_float(*bound),
                None => "+Inf".to_owned(),
            };
            write_series(self.out, self.name, "_bucket", labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        write_series(self.out, self.name, "_sum", labels, None);
        let _ = writeln!(self.out, " {}", format_float(sample.sum));
        write_series(self.out, self.name, "_count", labels, None);
        let _ = writeln!(self.out, " {cumulative}");
        self
    }
}

/// Writes `name` + `suffix` and the label set (with `le` last when given), without the value.
fn write_series(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    le: Option<&str>,
) {
    out.push_str(name);
    out.push_str(suffix);
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
    for (index, (label, value)) in all.enumerate() {
        debug_assert!(is_valid_label_name(label), "invalid label name {label:?}");
        if index > 0 {
            out.push(',');
        }
        let _ = write!(out, "{label}=\"{}\"", escape_label_value(value));
    }
    out.push('}');
}

/// A label value as the format quotes it: backslash, double quote and line feed escaped.
pub fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Help text as the format writes it: backslash and line feed escaped (quotes stay as they are).
pub fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A float as Prometheus parses it: `+Inf`, `-Inf`, `NaN`, or the shortest decimal that reads
/// back as the same value (`1` for 1.0, `0.005`).
pub fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved for Prometheus itself).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape_label_value("plain"), "plain");
        assert_eq!(escape_label_value(r#"a"b"#), r#"a\"b"#);
        assert_eq!(escape_label_value(r"a\b"), r"a\\b");
        assert_eq!(escape_label_value("a\nb"), r"a\nb");
        // An escaped backslash before a quote must not turn into an escaped quote.
        assert_eq!(escape_label_value("\\\""), r#"\\\""#);
        // Other characters, tabs and non-ASCII included, are written as they are.
        assert_eq!(escape_label_value("tab\there é"), "tab\there é");
    }

    #[test]
    fn help_text_escapes_backslash_and_newline_but_not_quotes() {
        assert_eq!(
            escape_help("say \"hi\"\\now\nplease"),
            r#"say "hi"\\now\nplease"#
        );
    }

    #[test]
    fn floats_are_written_as_prometheus_reads_them() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.005), "0.005");
        assert_eq!(format_float(2.5), "2.5");
        assert_eq!(format_float(0.0), "0");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
    }

    #[test]
    fn names_follow_the_format_grammar() {
        for good in ["baton_jobs", "_x", "a:b", "A1"] {
            assert!(is_valid_metric_name(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "a b", "é"] {
            assert!(!is_valid_metric_name(bad), "{bad}");
        }
        for good in ["route", "le", "_x1"] {
            assert!(is_valid_label_name(good), "{good}");
        }
        for bad in ["", "__name__", "a:b", "1a"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_family_writes_help_and_type_then_its_samples() {
        let mut doc = Exposition::new();
        doc.family(
            "baton_jobs",
            MetricType::Gauge,
            "Jobs by status.\nPer line.",
        )
        .sample(&[("status", "pending")], 3)
        .sample(&[("status", "say \"x\"")], 0);
        doc.family("baton_up", MetricType::Gauge, "Up.")
            .sample(&[], 1);
        assert_eq!(
            doc.finish(),
            "# HELP baton_jobs Jobs by status.\\nPer line.\n\
             # TYPE baton_jobs gauge\n\
             baton_jobs{status=\"pending\"} 3\n\
             baton_jobs{status=\"say \\\"x\\\"\"} 0\n\
             # HELP baton_up Up.\n\
             # TYPE baton_up gauge\n\
             baton_up 1\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_inf_equals_count() {
        let mut doc = Exposition::new();
        doc.family("d_seconds", MetricType::Histogram, "Durations.")
            .histogram(
                &[("route", "/a")],
                &HistogramSample {
                    bounds: &[0.1, 1.0, 2.5],
                    counts: &[2, 0, 3, 1],
                    sum: 7.25,
                },
            );
        assert_eq!(
            doc.finish(),
            "# HELP d_seconds Durations.\n\
             # TYPE d_seconds histogram\n\
             d_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n\
             d_seconds_bucket{route=\"/a\",le=\"1\"} 2\n\
             d_seconds_bucket{route=\"/a\",le=\"2.5\"} 5\n\
             d_seconds_bucket{route=\"/a\",le=\"+Inf\"} 6\n\
             d_seconds_sum{route=\"/a\"} 7.25\n\
             d_seconds_count{route=\"/a\"} 6\n"
        );
    }

    #[test]
    fn a_histogram_without_labels_still_labels_its_buckets() {
        let mut doc = Exposition::new();
        doc.family("h", MetricType::Histogram, "H.").histogram(
            &[],
            &HistogramSample {
                bounds: &[1.0],
                counts: &[0, 0],
                sum: 0.0,
            },
        );
        let text = doc.finish();
        assert!(text.contains("h_bucket{le=\"1\"} 0\n"), "{text}");
        assert!(text.contains("h_bucket{le=\"+Inf\"} 0\n"), "{text}");
        assert!(text.contains("h_sum 0\nh_count 0\n"), "{text}");
    }
}
