//! The repository speaks of itself: its documents, comments, manifests and
//! scripts name the project's versions, dates, commits, documents and code,
//! never the issues, work sessions, seed notes, reviews or people behind a
//! change, nor a `DESIGN.md` the repository does not hold (the design
//! document is `docs/design.md`).
//!
//! The test reads every git-tracked `*.md`, `*.rs`, `*.toml` and `*.sh` file
//! (and every tracked script that starts with `#!`) and fails with one
//! `path:line` per offending line. This file is left out: it has to spell
//! the patterns.
//!
//! Legitimate uses pass: a Kafka session timeout (`session.timeout.ms`,
//! "a session timeout of 6 s", a session of six seconds), "issue a request", "issuer",
//! `seed_done`, a link to `docs/design.md`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// This file, relative to the repository root.
const THIS_FILE: &str = "tests/repository_speaks_of_itself.rs";

#[test]
fn tracked_files_name_no_issue_session_seed_review_person_or_missing_design_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .expect("run `git ls-files` (the test needs git and a clone of the repository)");
    assert!(
        out.status.success(),
        "`git ls-files` failed in {}: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    assert!(
        files.iter().any(|f| f == "Cargo.toml"),
        "`git ls-files` in {} did not list the repository's files (got {} files)",
        root.display(),
        files.len()
    );
    let has_design_doc = files.iter().any(|f| f == "docs/design.md");

    let mut found = Vec::new();
    let mut scanned_files = 0;
    for path in &files {
        if path == THIS_FILE {
            continue;
        }
        // tracked but deleted in the working tree, or not a regular file
        let Ok(bytes) = std::fs::read(root.join(path)) else {
            continue;
        };
        if !is_scanned(path, &bytes) {
            continue;
        }
        scanned_files += 1;
        found.extend(scan_text(
            path,
            &String::from_utf8_lossy(&bytes),
            has_design_doc,
        ));
    }
    assert!(scanned_files > 0, "no file was scanned");
    assert!(
        found.is_empty(),
        "{} line(s) speak of issues, sessions, seeds, reviews or people, or of a DESIGN.md \
         the repository does not hold. Rewrite each to speak of the project itself: its \
         version (Cargo.toml), dates and commits (`git log`), its documents (docs/, the \
         design is docs/design.md) and its code. A Kafka session timeout reads as \
         \"session timeout of 6 s\", a random seed as \"seed = 42\".\n{}",
        found.len(),
        found.join("\n")
    );
}

/// The matcher catches planted references, also across a line break, and
/// lets the legitimate uses of the same words pass.
#[test]
fn the_check_catches_planted_references_and_lets_legitimate_uses_pass() {
    // (written with escapes, so that the repository's own text holds none of them)
    let planted = [
        "### Sess\u{69}on 4 (current code)",
        "What sess\u{69}on 3 changed, in the order of their effect:",
        "Sessions 1-2 woke it with a watermark request",
        "All session-3 runs (switchyard rows)",
        "Parallel processing without loss (iss\u{75}e 3): I1 and I2",
        "as Issue #4 asked",
        "see issues 5 and 6",
        "The sequence guard for asynchronous commits (se\u{65}d 4.6).",
        "offset (seed 002: `LOG-END-OFFSET - CURRENT-OFFSET`)",
        "the seed's standalone consumer never sees a partition added later",
        "another eng\u{69}neer's builds and e2e tests ran on the same cores",
        "as the reviewer asked",
        "Reviewers found it",
        "after an outside review of the driver",
        "pause and resume with the DESIGN.md semantics",
        "see ../shared/DESIGN.md",
        "see Design.md, \"Handoff\"",
    ];
    for line in planted {
        assert!(
            !findings("docs/x.md", line, true).is_empty(),
            "not caught: {line:?}"
        );
    }
    // a DESIGN.md of any case is a missing document while docs/design.md is
    // not tracked
    assert!(!findings("README.md", "see `docs/design.md`", false).is_empty());

    let legitimate = [
        "a Kafka session timeout of 6 s",
        "`session.timeout.ms` - 1 s (44 s by default)",
        "// sess\u{69}on 6 s, max.poll.interval 10 s: the pause below lasts 14 s",
        "with a 10 s session and 1 s heartbeat",
        "a killed member blocks until its session times out",
        "(SIGKILL of a random instance; sessions of 3 s)",
        "fn heartbeat_above_a_third_of_session_warns() {",
        "\"--session-timeout-ms\", \"3000\",",
        "issue a request per partition",
        "\"issuer\": \"cli:alice\", \"reason\": \"incident 42\"",
        "a newer commit was issued after it (2 issued in all)",
        "part.tracker.seed_done(decode(o, e.metadata()));",
        "version = \"0.11.1+wasi-snapshot-preview1\"",
        "review the settings before a deploy",
        "the design is in `docs/design.md`, \"Handoff between slots\"",
        "- `docs/design.md`: the words, what a pause means",
        "Figures of 2026-11-21, commit bfbb989 (current code)",
    ];
    for line in legitimate {
        assert_eq!(
            findings("docs/x.md", line, true),
            Vec::<&str>::new(),
            "flagged: {line:?}"
        );
    }
    // inside docs/, a relative link to the design document is fine
    assert!(findings("docs/deploy.md", "see [the design](design.md)", true).is_empty());
    assert!(!findings("README.md", "see [the design](design.md)", true).is_empty());

    // a planted file: reported as path:line, also across a line break
    let text = "# Benchmarks\n\
                \n\
                Figures of 2026-11-21, with a session timeout of 6 s.\n\
                Runs of 2026-11-21 (sess\u{69}on 3), nisshi 0.8.1.\n\
                The change another\n\
                engineer asked for.\n\
                //! What Session\n\
                //! 4 changed.\n";
    let found = scan_text("docs/planted.md", text, true);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].starts_with("docs/planted.md:4: "), "{found:#?}");
    assert!(found[1].starts_with("docs/planted.md:5: "), "{found:#?}");
    assert!(found[2].starts_with("docs/planted.md:7: "), "{found:#?}");
}

/// Is `path` one of the kinds of files the check reads?
fn is_scanned(path: &str, bytes: &[u8]) -> bool {
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    matches!(ext, "md" | "rs" | "toml" | "sh") || bytes.starts_with(b"#!")
}

/// Every offending line of `text` (the content of `path`) as
/// `path:line: text (reasons)`. A reference split by a line break (the last
/// word of one line and the first words of the next) is reported at the
/// first of the two lines.
fn scan_text(path: &str, text: &str, has_design_doc: bool) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut reasons: BTreeSet<&str> =
            findings(path, line, has_design_doc).into_iter().collect();
        let mut shown = line.trim().to_string();
        if let Some(next) = lines.get(i + 1) {
            let head = strip_comment_marker(next);
            if let Some(last) = line.split_whitespace().last() {
                let joined: Vec<&str> = std::iter::once(last)
                    .chain(head.split_whitespace().take(3))
                    .collect();
                let across = findings(path, &joined.join(" "), has_design_doc);
                let own: BTreeSet<&str> = findings(path, next, has_design_doc)
                    .into_iter()
                    .chain(reasons.iter().copied())
                    .collect();
                let new: Vec<&str> = across.into_iter().filter(|r| !own.contains(r)).collect();
                if !new.is_empty() {
                    shown = format!("{} / {}", line.trim(), next.trim());
                    reasons.extend(new);
                }
            }
        }
        if !reasons.is_empty() {
            let reasons: Vec<&str> = reasons.into_iter().collect();
            found.push(format!(
                "{path}:{}: {shown} ({})",
                i + 1,
                reasons.join("; ")
            ));
        }
    }
    found
}

/// The start of a line without indentation and comment or list markers.
fn strip_comment_marker(line: &str) -> &str {
    line.trim_start()
        .trim_start_matches(['/', '!', '#', '*', '>', '-'])
        .trim_start()
}

/// What `line` of `path` refers to that the repository should not.
fn findings(path: &str, line: &str, has_design_doc: bool) -> Vec<&'static str> {
    // ASCII lowercase keeps byte offsets, so `line` and `lower` line up
    let lower = line.to_ascii_lowercase();
    let mut out = Vec::new();
    if numbered(&lower, "session", true) {
        out.push("a work session by number");
    }
    if numbered(&lower, "issue", false) {
        out.push("an issue by number");
    }
    if numbered(&lower, "seed", false)
        || has_phrase(&lower, "the seed's")
        || has_phrase(&lower, "the seeds")
    {
        out.push("a seed note");
    }
    if [
        "reviewer",
        "reviewers",
        "outside review",
        "external review",
        "code review",
        "peer review",
    ]
    .iter()
    .any(|p| has_phrase(&lower, p))
    {
        out.push("a review or a reviewer");
    }
    if [
        "another eng\u{69}neer",
        "the other eng\u{69}neer",
        "a colleague",
    ]
    .iter()
    .any(|p| has_phrase(&lower, p))
    {
        out.push("a person");
    }
    if names_missing_design_doc(path, line, &lower, has_design_doc) {
        out.push("a DESIGN.md the repository does not hold");
    }
    out
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Byte offsets where `word` starts at a word boundary in `hay`.
fn word_starts<'a>(hay: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    hay.match_indices(word)
        .map(|(i, _)| i)
        .filter(move |&i| i == 0 || !is_word_byte(hay.as_bytes()[i - 1]))
}

/// Does `phrase` occur in `hay` as whole words?
fn has_phrase(hay: &str, phrase: &str) -> bool {
    word_starts(hay, phrase).any(|i| {
        hay.as_bytes()
            .get(i + phrase.len())
            .is_none_or(|&b| !is_word_byte(b))
    })
}

/// Does `word` (or its plural) occur followed by a number: "session" and
/// the number four, "sessions 1-2", "session-3", "issue #4", "seed" 4.6? With
/// `durations_allowed`, a number followed by a time unit (a session of 6 s) is
/// a duration, not a reference.
fn numbered(hay: &str, word: &str, durations_allowed: bool) -> bool {
    let b = hay.as_bytes();
    word_starts(hay, word).any(|start| {
        let mut j = start + word.len();
        if b.get(j) == Some(&b's') {
            j += 1;
        }
        if !matches!(b.get(j), Some(b' ' | b'-')) {
            return false;
        }
        j += 1;
        if b.get(j) == Some(&b'#') {
            j += 1;
        }
        if !b.get(j).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        // the number: digits, with `.`, `-` or `,` between digits
        while j < b.len()
            && (b[j].is_ascii_digit()
                || (matches!(b[j], b'.' | b'-' | b',')
                    && b.get(j + 1).is_some_and(u8::is_ascii_digit)))
        {
            j += 1;
        }
        if !durations_allowed {
            return true;
        }
        let rest = hay[j..].trim_start();
        let unit_len = rest.bytes().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        !matches!(
            unit,
            "ms" | "s"
                | "sec"
                | "secs"
                | "second"
                | "seconds"
                | "min"
                | "mins"
                | "minute"
                | "minutes"
                | "h"
                | "hour"
                | "hours"
        )
    })
}

/// Does `line` name a `DESIGN.md` that is not the repository's own design
/// document? Allowed: `docs/design.md` (lowercase, while tracked), and
/// inside `docs/` a relative `design.md`.
fn names_missing_design_doc(path: &str, line: &str, lower: &str, has_design_doc: bool) -> bool {
    const NAME: &str = "design.md";
    lower.match_indices(NAME).any(|(i, _)| {
        let before = &lower.as_bytes()[..i];
        let after = lower.as_bytes().get(i + NAME.len());
        // another file: `sysdesign.md`, `design.mdx`
        if before.last().is_some_and(|&c| is_word_byte(c))
            || after.is_some_and(|&c| is_word_byte(c))
        {
            return false;
        }
        let own = has_design_doc
            && line[i..].starts_with(NAME)
            && (before.ends_with(b"docs/")
                || (path.starts_with("docs/")
                    && (before.ends_with(b"./") || !before.ends_with(b"/"))));
        !own
    })
}
