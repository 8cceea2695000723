//! `grantflow scheduler run-once [--now DATETIME]`: one scheduler pass, then exit. For
//! cron-driven installations without `serve`, for operators catching up after an outage,
//! and for tests that drive time from outside.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use grantflow_service::{Clock, ManualClock, SystemClock};

use crate::cli::serve::{build_scheduler, services};
use crate::config::Config;

/// Run one pass at `now` (the system clock when absent) and print a one-line summary.
/// Exit code 0, or 1 when some timer or message could not be processed (it is retried by
/// a later pass).
pub async fn run_once(config: &Config, now: Option<DateTime<Utc>>) -> anyhow::Result<i32> {
    // With --now, the engine path (timeouts) must see the same instant as the pass.
    let clock: Arc<dyn Clock> = match now {
        Some(at) => Arc::new(ManualClock::new(at)),
        None => Arc::new(SystemClock),
    };
    let at = clock.now();
    let services = services(config, clock).await?;
    let scheduler = build_scheduler(config, services)?;
    let report = scheduler.run_once(at).await?;
    println!(
        "scheduler run at {}: {}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        report.summary()
    );
    Ok(if report.timer_errors + report.delivery_errors > 0 {
        1
    } else {
        0
    })
}
