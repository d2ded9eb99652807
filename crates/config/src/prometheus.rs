//! The one writer of the Prometheus text exposition format (version 0.0.4)
//! in the workspace.
//!
//! Every `/metrics` body Switchyard serves is written with
//! [`PrometheusText`]: the figures of `switchyard lag serve`
//! (`switchyard_lag::exporter`), the listeners of a running instance
//! (`switchyard_control::metrics`) and the counters of the schema registry
//! client (`switchyard_schema::MetricsSnapshot::prometheus`). So label
//! values are escaped one way everywhere ([`escape_label_value`]: backslash,
//! double quote and line feed) and numbers read the same (`+Inf`, `-Inf`,
//! `NaN` for the special floats).
//!
//! A family is announced once by [`PrometheusText::family`] (its `# HELP`
//! and `# TYPE` lines), then its samples follow with
//! [`PrometheusText::sample`] or, for a histogram,
//! [`PrometheusText::histogram`]. The writer does not check names or the
//! order of the calls: the caller writes the families it means to.
//!
//! ```
//! use switchyard_config::prometheus::{MetricKind, PrometheusText};
//!
//! let mut text = PrometheusText::new();
//! text.family("jobs_total", MetricKind::Counter, "Jobs done.");
//! text.sample("jobs_total", &[("queue", "a \"b\"")], 3u64);
//! text.sample("jobs_total", &[], 0.5);
//! let text = text.finish();
//! assert_eq!(
//!     text.lines().collect::<Vec<_>>(),
//!     [
//!         "# HELP jobs_total Jobs done.",
//!         "# TYPE jobs_total counter",
//!         r#"jobs_total{queue="a \"b\""} 3"#,
//!         "jobs_total 0.5",
//!     ]
//! );
//! ```

use std::borrow::Cow;
use std::fmt::Write;

/// The type of a metric family, as its `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A value that only goes up (reset at a restart).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative buckets with their `_sum` and `_count`.
    Histogram,
}

impl MetricKind {
    /// The name in a `# TYPE` line: `counter`, `gauge`, `histogram`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// A number a sample can carry, written as the text format reads it.
///
/// Integers are written in full; a float as Rust's `Display` writes it
/// (`3`, `0.25`), its special values as `+Inf`, `-Inf` and `NaN`.
pub trait SampleValue {
    /// Append the value to `out`.
    fn write_to(&self, out: &mut String);
}

impl SampleValue for f64 {
    fn write_to(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

macro_rules! integer_sample_value {
    ($($t:ty),*) => {$(
        impl SampleValue for $t {
            fn write_to(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}

integer_sample_value!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

/// Escape a label value for the text format: a backslash becomes `\\`, a
/// double quote `\"` and a line feed `\n`; everything else stays as it is.
/// Borrowed when there is nothing to escape.
///
/// ```
/// use switchyard_config::prometheus::escape_label_value;
///
/// assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
/// assert!(matches!(escape_label_value("orders"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn escape_label_value(value: &str) -> Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        let mut out = String::with_capacity(value.len() + 2);
        push_escaped(&mut out, value, true);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(value)
    }
}

/// Append `value` with backslash and line feed escaped, and the double quote
/// too when `quote` (a label value; a `# HELP` text leaves it).
fn push_escaped(out: &mut String, value: &str, quote: bool) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// An exposition text being written: families, their samples, then
/// [`finish`](PrometheusText::finish).
#[derive(Debug, Clone, Default)]
pub struct PrometheusText {
    out: String,
}

impl PrometheusText {
    /// An empty text.
    pub fn new() -> PrometheusText {
        PrometheusText::default()
    }

    /// Announce the family `name`: its `# HELP` line (`help` with backslash
    /// and line feed escaped) and its `# TYPE` line.
    pub fn family(&mut self, name: &str, kind: MetricKind, help: &str) -> &mut Self {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        push_escaped(&mut self.out, help, false);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
        self
    }

    /// One sample: `name{k="v",...} value`, the label values escaped by
    /// [`escape_label_value`], in the order given; without labels
    /// `name value`.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl SampleValue,
    ) -> &mut Self {
        self.series(name, "", labels, None, &value)
    }

    /// The samples of one histogram series: a `name_bucket` per entry of
    /// `buckets` (upper bound, cumulative count) with `labels` and `le`
    /// last, the `+Inf` bucket holding `count`, then `name_sum` and
    /// `name_count`. A bound is written as [`f64`]'s `Display` does
    /// (`0.005`, `1`, `10`).
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        count: u64,
        sum: f64,
    ) -> &mut Self {
        let mut le = String::new();
        for (bound, cumulative) in buckets {
            le.clear();
            bound.write_to(&mut le);
            self.series(name, "_bucket", labels, Some(("le", &le)), cumulative);
        }
        self.series(name, "_bucket", labels, Some(("le", "+Inf")), &count);
        self.series(name, "_sum", labels, None, &sum);
        self.series(name, "_count", labels, None, &count)
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }

    fn series(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        last: Option<(&str, &str)>,
        value: &dyn SampleValue,
    ) -> &mut Self {
        let out = &mut self.out;
        out.push_str(name);
        out.push_str(suffix);
        let mut pairs = labels.iter().copied().chain(last).peekable();
        if pairs.peek().is_some() {
            out.push('{');
            for (i, (key, value)) in pairs.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(key);
                out.push_str("=\"");
                push_escaped(out, value, true);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        value.write_to(out);
        out.push('\n');
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_is_its_help_and_type_lines() {
        let mut t = PrometheusText::new();
        t.family("a_total", MetricKind::Counter, "Things counted.")
            .family("b", MetricKind::Gauge, "A level.")
            .family("c_seconds", MetricKind::Histogram, "Durations.");
        assert_eq!(
            t.finish(),
            "# HELP a_total Things counted.\n# TYPE a_total counter\n\
             # HELP b A level.\n# TYPE b gauge\n\
             # HELP c_seconds Durations.\n# TYPE c_seconds histogram\n"
        );
    }

    #[test]
    fn help_escapes_backslash_and_line_feed_but_not_quotes() {
        let mut t = PrometheusText::new();
        t.family("x", MetricKind::Gauge, "a \"b\" c\\d\ne");
        assert_eq!(t.as_str(), "# HELP x a \"b\" c\\\\d\\ne\n# TYPE x gauge\n");
    }

    #[test]
    fn samples_keep_the_label_order_and_leave_braces_out_without_labels() {
        let mut t = PrometheusText::new();
        t.sample(
            "m",
            &[("group", "g"), ("topic", "t"), ("partition", "3")],
            6.0,
        )
        .sample("m", &[], 1u64);
        assert_eq!(
            t.finish(),
            "m{group=\"g\",topic=\"t\",partition=\"3\"} 6\nm 1\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut t = PrometheusText::new();
        t.sample("m", &[("reason", "failed:\n\"boom\" at C:\\x")], 1u8);
        assert_eq!(
            t.as_str(),
            "m{reason=\"failed:\\n\\\"boom\\\" at C:\\\\x\"} 1\n"
        );
        assert_eq!(escape_label_value(""), "");
        assert_eq!(escape_label_value("é\t\r"), "é\t\r");
        assert_eq!(escape_label_value("\\\\"), "\\\\\\\\");
    }

    #[test]
    fn values_read_as_the_text_format_spells_them() {
        let mut t = PrometheusText::new();
        for v in [
            0.0,
            1.5,
            1e-3,
            3.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ] {
            t.sample("f", &[], v);
        }
        t.sample("u", &[], u64::MAX).sample("i", &[], -7i64);
        assert_eq!(
            t.finish(),
            "f 0\nf 1.5\nf 0.001\nf 3\nf +Inf\nf -Inf\nf NaN\n\
             u 18446744073709551615\ni -7\n"
        );
    }

    #[test]
    fn a_histogram_is_its_buckets_then_sum_and_count() {
        let mut t = PrometheusText::new();
        t.family("d_seconds", MetricKind::Histogram, "Durations.")
            .histogram(
                "d_seconds",
                &[("listener", "a\"b")],
                &[(0.005, 1), (1.0, 2), (10.0, 4)],
                5,
                12.25,
            )
            .histogram("d_seconds", &[], &[], 0, 0.0);
        assert_eq!(
            t.finish(),
            "# HELP d_seconds Durations.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{listener=\"a\\\"b\",le=\"0.005\"} 1\n\
             d_seconds_bucket{listener=\"a\\\"b\",le=\"1\"} 2\n\
             d_seconds_bucket{listener=\"a\\\"b\",le=\"10\"} 4\n\
             d_seconds_bucket{listener=\"a\\\"b\",le=\"+Inf\"} 5\n\
             d_seconds_sum{listener=\"a\\\"b\"} 12.25\n\
             d_seconds_count{listener=\"a\\\"b\"} 5\n\
             d_seconds_bucket{le=\"+Inf\"} 0\n\
             d_seconds_sum 0\n\
             d_seconds_count 0\n"
        );
    }
}
