//! A listener whose client cannot authenticate (a wrong password) or is not
//! authorized (no ACL for its topic and group) says so: its
//! `ListenerHandle::problem` names the problem and what to check within
//! seconds, with no secret in it, while it keeps retrying; once the
//! problem is fixed (the ACLs granted), the listener consumes and the
//! problem is gone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use switchyard_runtime::ListenerHandle;

use super::*;

fn listener(
    conn: Connection,
    topic: &str,
    group: &str,
    processed: Arc<AtomicUsize>,
) -> ListenerHandle {
    let mut cfg = ConsumerConfig::new(conn.get("bootstrap.servers").unwrap_or_default())
        .with_group(group)
        .with_offset_reset(OffsetReset::Earliest)
        .with_connection(conn);
    cfg.session_timeout_ms = 6000;
    Listener::builder("guarded")
        .config(cfg)
        .topics([topic.to_string()])
        .handler(Utf8, Utf8, move |_r: Record<String, String>| {
            let processed = processed.clone();
            async move {
                processed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .start()
        .unwrap()
}

/// The problem `l` reports within 30 s.
async fn problem_of(l: &ListenerHandle) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(p) = l.problem() {
            return p;
        }
        assert!(Instant::now() < deadline, "no problem reported within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_names_a_wrong_password_and_a_missing_acl_without_showing_a_secret() {
    let s = sec();
    let topic = unique_name("sec-prob-t");
    tokio::task::block_in_place(|| create_topic(&admin(), &topic, 1));

    let group = unique_name("sec-prob-g");
    let processed = Arc::new(AtomicUsize::new(0));
    let wrong = format!("wrong-{}", random_token());
    let l = listener(
        connection("instance", &wrong),
        &topic,
        &group,
        processed.clone(),
    );
    let p = problem_of(&l).await;
    log(&format!("wrong password: {p}"));
    assert!(p.starts_with("authentication failed"), "{p}");
    assert!(p.contains("sasl.password") && !p.contains(&wrong), "{p}");
    l.shutdown_within(Duration::from_secs(2)).await;

    // the right password, but no ACL names this topic or group for it
    let l = listener(
        connection("instance", &s.instance_password),
        &topic,
        &group,
        processed.clone(),
    );
    let p = problem_of(&l).await;
    log(&format!("no ACL: {p}"));
    assert!(p.starts_with("not authorized"), "{p}");
    assert!(p.contains("READ"), "{p}");
    assert_no_secret("the problems", &p);

    // fixed while the listener runs: it joins, consumes, and the problem is gone
    tokio::task::block_in_place(|| {
        acl(&[
            "--add",
            "--allow-principal",
            "User:instance",
            "--topic",
            &topic,
            "--operation",
            "Read",
            "--operation",
            "Describe",
        ]);
        acl(&[
            "--add",
            "--allow-principal",
            "User:instance",
            "--group",
            &group,
            "--operation",
            "Read",
        ]);
        produce(&admin(), &topic, &["after-the-fix"]);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while processed.load(Ordering::SeqCst) == 0 || l.problem().is_some() {
        assert!(
            Instant::now() < deadline,
            "within 60 s of the fix: processed {}, problem {:?}",
            processed.load(Ordering::SeqCst),
            l.problem()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    l.shutdown_within(Duration::from_secs(2)).await;
    scan_logged();
}
