//! The desired state in Redis: one JSON document per application in the key
//! `switchyard:desired:{app}`, compare-and-set with `WATCH`/`MULTI`/`EXEC`
//! (the write goes through only if the key still holds `prev_version`), and
//! a change notification on the pub/sub channel of the same name. Watchers
//! also re-read the key every second, so a lost notification delays a change
//! by at most that.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{ControlError, Result};
use crate::model::DesiredState;
use crate::store::Store;

/// The key (and channel) of `app`.
pub fn key(app: &str) -> String {
    format!("switchyard:desired:{app}")
}

/// A Redis [`Store`].
pub struct RedisStore {
    client: redis::Client,
    url: String,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://127.0.0.1:6379/`); checks the connection.
    pub fn new(url: &str) -> Result<Arc<RedisStore>> {
        let client = redis::Client::open(url)?;
        let mut con = client.get_connection()?;
        redis::cmd("PING").query::<String>(&mut con)?;
        Ok(Arc::new(RedisStore {
            client,
            url: url.into(),
        }))
    }

    fn get(con: &mut redis::Connection, app: &str) -> Result<DesiredState> {
        let k = key(app);
        let raw: Option<Vec<u8>> = redis::cmd("GET").arg(&k).query(con)?;
        // the same rule as the control topic: a document that cannot be
        // read makes the state unreadable (agents fail closed)
        match crate::log::decode_record(Some(app.as_bytes()), raw.as_deref()) {
            Ok((_, Some(crate::log::AppState::Valid(s)))) => Ok(*s),
            Ok((_, Some(crate::log::AppState::Unreadable(why)))) => Ok(DesiredState::unreadable(
                app,
                format!("redis key `{k}`: {why}"),
            )),
            Ok((_, None)) => Ok(DesiredState::new(app)),
            Err(why) => Err(ControlError::Invalid(why)),
        }
    }
}

impl Store for RedisStore {
    fn read(&self, app: &str) -> Result<DesiredState> {
        Self::get(&mut self.client.get_connection()?, app)
    }

    fn try_put(&self, next: &DesiredState) -> Result<bool> {
        let mut con = self.client.get_connection()?;
        let k = key(&next.app);
        redis::cmd("WATCH").arg(&k).query::<()>(&mut con)?;
        let current = Self::get(&mut con, &next.app)?;
        if current.is_unreadable() || current.version != next.prev_version {
            redis::cmd("UNWATCH").query::<()>(&mut con)?;
            return Ok(false);
        }
        let r: redis::Value = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&k)
            .arg(next.encode())
            .cmd("PUBLISH")
            .arg(&k)
            .arg(next.version)
            .query(&mut con)?;
        Ok(!matches!(r, redis::Value::Nil))
    }

    fn watch(&self, app: &str) -> Result<watch::Receiver<Option<DesiredState>>> {
        let initial = self.read(app)?;
        let (tx, rx) = watch::channel(Some(initial));
        let client = self.client.clone();
        let app = app.to_string();
        let mut sub = client.get_connection()?;
        let mut con = client.get_connection()?;
        std::thread::Builder::new()
            .name("sy-redis-watch".into())
            .spawn(move || {
                let mut ps = sub.as_pubsub();
                if let Err(e) = ps
                    .subscribe(key(&app))
                    .and_then(|_| ps.set_read_timeout(Some(Duration::from_secs(1))))
                {
                    tracing::warn!(error = %e, "redis subscribe failed; polling only");
                }
                while !tx.is_closed() {
                    if let Err(e) = ps.get_message() {
                        if !e.is_timeout() {
                            tracing::debug!(error = %e, "redis pub/sub");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                    match RedisStore::get(&mut con, &app) {
                        Ok(s) => {
                            let changed = tx.borrow().as_ref() != Some(&s);
                            if changed {
                                tx.send_replace(Some(s));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "redis read failed; keeping the last state")
                        }
                    }
                }
            })
            .map_err(ControlError::Io)?;
        Ok(rx)
    }

    fn describe(&self) -> String {
        format!("redis {}", self.url)
    }
}
