//! The shared-group row of `switchyard-bench switch`: 2 blue + 2 green
//! in-process instances configured with one group; only the joined slot is
//! a member (`deploy init --strategy shared`), the other's listeners start
//! detached and stay out. Each handoff is `Driver::run_shared` (green joins,
//! then blue leaves after draining and committing on revoke), under the same
//! steady flow and record log as the separate-groups row.
//!
//! **gap** here = the longest time without any processed record (any slot,
//! any partition) from the driver's start until every partition processed a
//! record on the new slot: a shared-group switch goes through two
//! rebalances, and with the eager `range` assignor each one stops every
//! partition, so the first record of the new slot is not where the hole is.
//! **total** is measured as in the separate-groups row.

use std::time::{Duration, Instant};

use switchyard_deploy::shared;

use crate::handoff::{
    hole, listener, note, stop_agents, trace_line, wait_log, Args, Env, Log, Stats, LISTENER, SLOTS,
};

/// Run `a.switches` shared-group handoffs; see the module docs.
pub(crate) async fn shared_group(
    env: &Env,
    a: &Args,
    topic: &str,
    base: Instant,
    log: &Log,
) -> anyhow::Result<Stats> {
    let heartbeat = Duration::from_millis(a.status_interval_ms);
    let tag = format!("{}-shared", env.tag);
    let plane = tokio::task::block_in_place(|| env.plane(&tag, heartbeat))?;
    let (group, driver) = (&plane.app, &plane.driver);
    let bootstrap = env.bootstrap.clone();
    tokio::task::block_in_place(|| {
        driver.write(|s| shared::init(s, LISTENER, SLOTS[0], &[topic.to_string()]))
    })?;
    let mut agents = Vec::new();
    for (i, slot) in SLOTS.iter().enumerate() {
        for n in 0..a.instances {
            // tags 10 (blue) and 11 (green): apart from the other rows' tags
            let l = listener(
                &bootstrap,
                a.group_protocol,
                group,
                topic,
                10 + i as u32,
                base,
                log,
            )?
            .detached(true)
            .start()?;
            agents.push(plane.agent(slot, format!("shared-{slot}-{n}"), l).await?);
        }
    }
    let t = base.elapsed().as_nanos() as u64;
    anyhow::ensure!(
        wait_log(log, 10, t, a.partitions).await.1.is_some(),
        "blue (shared group) did not process every partition"
    );
    tokio::time::sleep(Duration::from_millis(a.settle_ms)).await;
    let mut stats = Stats::default();
    for n in 0..a.switches {
        let to = (n + 1) % 2;
        let t0 = base.elapsed().as_nanos() as u64;
        let o = tokio::task::block_in_place(|| -> anyhow::Result<_> {
            let m = shared::switch(&driver.read()?, LISTENER, SLOTS[to])
                .map_err(|e| anyhow::anyhow!(e))?;
            driver.run_shared(&m, &mut trace_line(base))
        })?;
        anyhow::ensure!(
            o.ok,
            "shared switch {n} rolled back: {}",
            o.reason.unwrap_or_default()
        );
        let (_, total, missing) = wait_log(log, 10 + to as u32, t0, a.partitions).await;
        let gap = total.map(|t| hole(log, t0, t0 + (t * 1e6) as u64));
        let what = stats.driver(&o, "shared switch", n, to);
        note(&mut stats, &what, (gap, total, missing));
        tokio::time::sleep(Duration::from_millis(a.settle_ms)).await;
    }
    driver.tail.stop();
    stop_agents(agents).await;
    Ok(stats)
}
