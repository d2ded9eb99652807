//! The processed log: what consumers under test did, and the checks run on it.
//!
//! A test consumer process appends one line per processed record with a [`LogWriter`]:
//! `"{instance}\t{topic}\t{partition}\t{offset}\t{key}\t{value}\n"`. Several processes may append to the same file:
//! it is opened with `O_APPEND` and each line is written with a single `write(2)`, so lines never interleave
//! mid-line. A process killed mid-write can at most leave a torn last line, which [`ProcessedLog::read`] ignores.
//!
//! After the run, the test reads the log(s) into a [`ProcessedLog`] and checks the delivery invariants:
//! [`ProcessedLog::check_no_gaps`] (every produced record processed), [`ProcessedLog::duplicates`] (records processed
//! more than once) and [`ProcessedLog::check_key_order`] (per key, records processed in order).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Appends processed-record lines to a processed log file.
pub struct LogWriter {
    file: File,
}

impl LogWriter {
    /// Open (creating it if needed) the log at `path` for appending (`O_APPEND`).
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogWriter { file })
    }

    /// Append one line for a processed record. Tabs and line breaks in any field are replaced by spaces. The line is
    /// written with one `write(2)`, so concurrent writers interleave whole lines.
    pub fn record(
        &mut self,
        instance: &str,
        topic: &str,
        partition: i32,
        offset: i64,
        key: &str,
        value: &str,
    ) -> io::Result<()> {
        let line = format!(
            "{}\t{}\t{partition}\t{offset}\t{}\t{}\n",
            clean(instance),
            clean(topic),
            clean(key),
            clean(value)
        );
        let written = self.file.write(line.as_bytes())?;
        if written != line.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "short write to processed log: {written} of {} bytes",
                    line.len()
                ),
            ));
        }
        Ok(())
    }
}

/// Text of a record's key or value for [`LogWriter::record`]: UTF-8 lossy, `""` for none.
pub fn text(bytes: Option<&[u8]>) -> String {
    bytes
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn clean(field: &str) -> String {
    field.replace(['\t', '\n', '\r'], " ")
}

/// One processed record, as read back from a processed log.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// The consumer instance that processed it.
    pub instance: String,
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key (UTF-8 lossy; tabs and newlines replaced by spaces).
    pub key: String,
    /// Its value (same treatment as the key); for the sequence-numbered records of the testkit's producers, the
    /// sequence number.
    pub value: String,
}

impl Processed {
    fn parse(line: &str) -> Option<Processed> {
        let mut fields = line.splitn(6, '\t');
        Some(Processed {
            instance: fields.next()?.to_string(),
            topic: fields.next()?.to_string(),
            partition: fields.next()?.parse().ok()?,
            offset: fields.next()?.parse().ok()?,
            key: fields.next()?.to_string(),
            value: fields.next()?.to_string(),
        })
    }
}

/// The entries of one or more processed logs, in file order (per file: processing order of its writers).
#[derive(Debug, Clone, Default)]
pub struct ProcessedLog {
    /// Every processed record, in the order read.
    pub entries: Vec<Processed>,
}

impl ProcessedLog {
    /// Read the log at `path`. A missing file is an empty log; a torn last line (no trailing newline) and lines that
    /// do not parse are ignored.
    pub fn read(path: &Path) -> ProcessedLog {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("read processed log {}: {e}", path.display()),
        };
        let text = String::from_utf8_lossy(&bytes);
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        let entries = complete
            .split('\n')
            .filter(|line| !line.is_empty())
            .filter_map(Processed::parse)
            .collect();
        ProcessedLog { entries }
    }

    /// Read several logs (e.g. one per consumer process), concatenated in the order given.
    pub fn read_all(paths: &[PathBuf]) -> ProcessedLog {
        let entries = paths
            .iter()
            .flat_map(|path| ProcessedLog::read(path).entries)
            .collect();
        ProcessedLog { entries }
    }

    fn of_topic<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a Processed> + 'a {
        self.entries.iter().filter(move |e| e.topic == topic)
    }

    /// The number of entries for `topic` (duplicates included).
    pub fn count(&self, topic: &str) -> usize {
        self.of_topic(topic).count()
    }

    /// No gaps: for every partition in `end`, the processed offsets of `topic` cover `from[p]..end[p]` completely
    /// (`from` defaults to 0 for partitions it lacks) and none is at or beyond `end[p]`. Offsets below `from[p]` are
    /// ignored. `Err` describes, per failing partition, the missing (or unexpected) offsets.
    pub fn check_no_gaps(
        &self,
        topic: &str,
        from: &BTreeMap<i32, i64>,
        end: &BTreeMap<i32, i64>,
    ) -> Result<(), String> {
        let mut seen: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
        for entry in self.of_topic(topic) {
            seen.entry(entry.partition)
                .or_default()
                .insert(entry.offset);
        }
        let mut problems = Vec::new();
        for (&partition, &end_offset) in end {
            let start = from.get(&partition).copied().unwrap_or(0);
            let offsets = seen.remove(&partition).unwrap_or_default();
            let missing: Vec<i64> = (start..end_offset)
                .filter(|o| !offsets.contains(o))
                .collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "partition {partition}: {} of {} offsets in {start}..{end_offset} missing: {}",
                    missing.len(),
                    end_offset - start,
                    ranges(&missing)
                ));
            }
            let beyond: Vec<i64> = offsets.range(end_offset.max(start)..).copied().collect();
            if !beyond.is_empty() {
                problems.push(format!(
                    "partition {partition}: offsets at or past end {end_offset}: {}",
                    ranges(&beyond)
                ));
            }
        }
        for (partition, offsets) in seen {
            let offsets: Vec<i64> = offsets.into_iter().collect();
            problems.push(format!(
                "partition {partition} not expected, processed {}",
                ranges(&offsets)
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("topic {topic}: {}", problems.join("; ")))
        }
    }

    /// Offsets of `topic` processed more than once: per `(partition, offset)`, the instances that processed it (one
    /// element per processing, in log order), sorted by partition and offset.
    pub fn duplicates(&self, topic: &str) -> Vec<((i32, i64), Vec<String>)> {
        let mut by_offset: BTreeMap<(i32, i64), Vec<String>> = BTreeMap::new();
        for entry in self.of_topic(topic) {
            by_offset
                .entry((entry.partition, entry.offset))
                .or_default()
                .push(entry.instance.clone());
        }
        by_offset
            .into_iter()
            .filter(|(_, instances)| instances.len() > 1)
            .collect()
    }

    /// I1 with one crash: every offset of `topic` processed more than once was processed by `killed`, at or above
    /// the offset its group had committed for that partition when it was killed (`committed_at_kill`; -1 or
    /// missing: nothing committed). `Err` names the first offset that breaks it.
    pub fn check_duplicates_only_from(
        &self,
        topic: &str,
        killed: &str,
        committed_at_kill: &BTreeMap<i32, i64>,
    ) -> Result<(), String> {
        for ((partition, offset), who) in self.duplicates(topic) {
            if !who.iter().any(|w| w == killed) {
                return Err(format!(
                    "{partition}/{offset} processed twice by {who:?} without a crash"
                ));
            }
            let committed = committed_at_kill
                .get(&partition)
                .copied()
                .unwrap_or(0)
                .max(0);
            if offset < committed {
                return Err(format!(
                    "{partition}/{offset} was committed ({committed}) before the crash but processed twice by {who:?}"
                ));
            }
        }
        Ok(())
    }

    /// Per key order: for each instance and key (and partition), the offsets of `topic` must strictly increase in
    /// processing (log) order. `Err` describes the first inversion, in log order.
    pub fn check_key_order(&self, topic: &str) -> Result<(), String> {
        let mut last: HashMap<(&str, &str, i32), (i64, &str)> = HashMap::new();
        for entry in self.of_topic(topic) {
            let slot = (entry.instance.as_str(), entry.key.as_str(), entry.partition);
            if let Some(&(previous, previous_value)) = last.get(&slot) {
                if entry.offset <= previous {
                    return Err(format!(
                        "topic {topic}: instance {} processed key {:?} in partition {} at offset {} (value {:?}) after \
                         offset {previous} (value {previous_value:?})",
                        entry.instance, entry.key, entry.partition, entry.offset, entry.value
                    ));
                }
            }
            last.insert(slot, (entry.offset, entry.value.as_str()));
        }
        Ok(())
    }
}

/// `[1, 2, 3, 7]` as `"1..=3, 7"`, at most 10 runs then `...`.
fn ranges(offsets: &[i64]) -> String {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &offset in offsets {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == offset => *last = offset,
            _ => runs.push((offset, offset)),
        }
    }
    let mut text: Vec<String> = runs
        .iter()
        .take(10)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}..={b}")
            }
        })
        .collect();
    if runs.len() > 10 {
        text.push(format!("... ({} runs)", runs.len()));
    }
    text.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_log(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("{}.log", crate::unique_name(name)));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn round_trip_detects_gap_and_duplicate() {
        let path = temp_log("processed-roundtrip");
        let mut a = LogWriter::open(&path).unwrap();
        let mut b = LogWriter::open(&path).unwrap();
        for offset in [0, 1, 2, 4] {
            a.record("a", "t", 0, offset, "k\t1", &offset.to_string())
                .unwrap();
        }
        b.record("b", "t", 0, 2, "k\n1", "2").unwrap();
        for offset in 0..3 {
            b.record("b", "t", 1, offset, "k2", &offset.to_string())
                .unwrap();
        }
        a.record("a", "other", 0, 0, "x", "0").unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"a\tt\t0\t3\tk")
            .unwrap();

        let log = ProcessedLog::read(&path);
        assert_eq!(log.entries.len(), 9, "torn last line ignored");
        assert_eq!(
            log.entries[4],
            Processed {
                instance: "b".into(),
                topic: "t".into(),
                partition: 0,
                offset: 2,
                key: "k 1".into(),
                value: "2".into()
            }
        );
        assert_eq!(log.count("t"), 8);

        let from = BTreeMap::new();
        let end = BTreeMap::from([(0, 5), (1, 3)]);
        let gaps = log.check_no_gaps("t", &from, &end).unwrap_err();
        assert!(
            gaps.contains("partition 0: 1 of 5 offsets in 0..5 missing: 3"),
            "{gaps}"
        );
        assert!(!gaps.contains("partition 1"), "{gaps}");
        log.check_no_gaps(
            "t",
            &BTreeMap::from([(0, 4)]),
            &BTreeMap::from([(0, 5), (1, 3)]),
        )
        .unwrap();

        assert_eq!(
            log.duplicates("t"),
            vec![((0, 2), vec!["a".to_string(), "b".to_string()])]
        );
        log.check_key_order("t").unwrap();
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn missing_file_is_empty_and_read_all_concatenates() {
        let missing = temp_log("processed-missing");
        assert!(ProcessedLog::read(&missing).entries.is_empty());
        let present = temp_log("processed-present");
        LogWriter::open(&present)
            .unwrap()
            .record("i", "t", 0, 0, "k", "0")
            .unwrap();
        let log = ProcessedLog::read_all(&[missing, present.clone()]);
        assert_eq!(log.count("t"), 1);
        std::fs::remove_file(&present).unwrap();
    }

    #[test]
    fn key_order_inversion_and_unexpected_offsets() {
        let entry = |instance: &str, partition, offset| Processed {
            instance: instance.into(),
            topic: "t".into(),
            partition,
            offset,
            key: "k".into(),
            value: offset.to_string(),
        };
        let log = ProcessedLog {
            entries: vec![entry("a", 0, 5), entry("b", 0, 3), entry("a", 0, 4)],
        };
        let err = log.check_key_order("t").unwrap_err();
        assert!(
            err.contains("offset 4") && err.contains("after offset 5"),
            "{err}"
        );
        let err = log
            .check_no_gaps("t", &BTreeMap::from([(0, 3)]), &BTreeMap::from([(0, 5)]))
            .unwrap_err();
        assert!(err.contains("at or past end 5: 5"), "{err}");
        let err = log
            .check_no_gaps("t", &BTreeMap::new(), &BTreeMap::from([(1, 0)]))
            .unwrap_err();
        assert!(err.contains("partition 0 not expected"), "{err}");
    }

    #[test]
    fn ranges_compress_runs() {
        assert_eq!(ranges(&[1, 2, 3, 7, 9, 10]), "1..=3, 7, 9..=10");
        assert_eq!(text(Some(b"\xffa")), "\u{fffd}a");
        assert_eq!(text(None), "");
    }
}
