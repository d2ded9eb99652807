//! A watched file (e.g. a mounted ConfigMap) holding the desired pause set,
//! JSON or TOML by extension:
//!
//! ```toml
//! [[pauses]]
//! listener = "orders"
//! topic = "orders-in"        # optional; partition = 3 also possible
//! reason = "incident 42"
//! ```
//!
//! The file is polled every 200 ms (mtime and content); each valid change
//! becomes a new local version. A malformed file is rejected with a logged
//! reason and the last good state is kept. The source is read-only: writes
//! through HTTP or the CLI go elsewhere.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;

use crate::error::{ControlError, Result};
use crate::model::{now_ms, DesiredState, Pause};
use crate::store::Store;

/// How often the file is checked.
pub const POLL: Duration = Duration::from_millis(200);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    pauses: Vec<Pause>,
}

/// Parse the pause set in `text`; TOML when `path` ends in `.toml`.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Pause>> {
    let what = path.display().to_string();
    let doc: FileDoc = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(text).map_err(|e| ControlError::Decode {
            what: what.clone(),
            reason: e.to_string(),
        })?
    } else {
        serde_json::from_str(text).map_err(|e| ControlError::Decode {
            what: what.clone(),
            reason: e.to_string(),
        })?
    };
    for p in &doc.pauses {
        p.validate().map_err(|e| ControlError::Decode {
            what: what.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(doc.pauses)
}

/// A watched file as a read-only [`Store`].
pub struct FileSource {
    path: PathBuf,
    app: String,
    current: Arc<Mutex<DesiredState>>,
}

impl FileSource {
    /// Watch `path` for the pauses of `app`. A missing or malformed file at
    /// start gives an empty pause set (logged).
    pub fn new(path: &Path, app: &str) -> Arc<FileSource> {
        let src = Arc::new(FileSource {
            path: path.into(),
            app: app.into(),
            current: Arc::new(Mutex::new(DesiredState::new(app))),
        });
        src.refresh(&mut None);
        src
    }

    /// Re-read the file if it changed; true if the pause set changed.
    fn refresh(&self, last: &mut Option<(Option<std::time::SystemTime>, String)>) -> bool {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                if last.is_some() || mtime.is_some() {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot read the desired-state file; keeping the last good state");
                }
                return false;
            }
        };
        if last
            .as_ref()
            .is_some_and(|(m, t)| *m == mtime && *t == text)
        {
            return false;
        }
        *last = Some((mtime, text.clone()));
        match parse(&self.path, &text) {
            Ok(pauses) => {
                let mut cur = self.current.lock().unwrap();
                if cur.pauses == pauses && cur.version > 0 {
                    return false;
                }
                let mut next = cur.next(Some(&format!("file:{}", self.path.display())), now_ms());
                next.pauses = pauses;
                tracing::info!(path = %self.path.display(), version = next.version, "desired-state file applied");
                *cur = next;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "desired-state file rejected; keeping the last good state");
                false
            }
        }
    }
}

impl Store for FileSource {
    fn read(&self, app: &str) -> Result<DesiredState> {
        if app != self.app {
            return Ok(DesiredState::new(app));
        }
        Ok(self.current.lock().unwrap().clone())
    }

    fn try_put(&self, _next: &DesiredState) -> Result<bool> {
        Err(ControlError::ReadOnly(format!(
            "desired state comes from the file {}; edit it instead",
            self.path.display()
        )))
    }

    fn watch(&self, app: &str) -> Result<watch::Receiver<Option<DesiredState>>> {
        let (tx, rx) = watch::channel(Some(self.read(app)?));
        let me = FileSource {
            path: self.path.clone(),
            app: self.app.clone(),
            current: self.current.clone(),
        };
        std::thread::Builder::new()
            .name("sy-file-watch".into())
            .spawn(move || {
                let mut last = None;
                while !tx.is_closed() {
                    if me.refresh(&mut last) {
                        tx.send_replace(Some(me.current.lock().unwrap().clone()));
                    }
                    std::thread::sleep(POLL);
                }
            })?;
        Ok(rx)
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_files_apply_and_bad_ones_keep_the_last_good_state() {
        let dir = std::env::temp_dir().join(format!("sy-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pauses.toml");
        std::fs::write(&path, "[[pauses]]\nlistener = \"l\"\ntopic = \"t\"\n").unwrap();
        let src = FileSource::new(&path, "a");
        let s = src.read("a").unwrap();
        assert_eq!((s.version, s.pauses.len()), (1, 1));
        let mut last = None;
        src.refresh(&mut last);
        std::fs::write(&path, "[[pauses]]\nlistener = \"\"\n").unwrap();
        assert!(!src.refresh(&mut last));
        std::fs::write(&path, "not toml [").unwrap();
        assert!(!src.refresh(&mut last));
        assert_eq!(src.read("a").unwrap().version, 1);
        std::fs::write(&path, "pauses = []\n").unwrap();
        assert!(src.refresh(&mut last));
        assert_eq!(src.read("a").unwrap().pauses.len(), 0);
        assert!(src.write("a", None, None, &|_| Ok(())).is_err());
        let e = parse(Path::new("x.json"), "{\"pauses\": 3}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
