//! The retry schedule the outbox follows after a transient failure.

use std::time::Duration;

use grantflow_mail::{next_attempt_delay, with_jitter};

#[test]
fn the_delay_doubles_from_thirty_seconds_and_stops_at_one_hour() {
    let schedule: Vec<u64> = (1..=10)
        .map(|attempts| next_attempt_delay(attempts).as_secs())
        .collect();
    assert_eq!(
        schedule,
        [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    );
    assert_eq!(next_attempt_delay(0), Duration::from_secs(30));
    assert_eq!(next_attempt_delay(u32::MAX), Duration::from_secs(3600));
}

#[test]
fn the_schedule_is_deterministic_and_jitter_comes_from_the_caller() {
    assert_eq!(next_attempt_delay(5), next_attempt_delay(5));
    let delay = next_attempt_delay(3);
    assert_eq!(with_jitter(delay, 0.0), Duration::from_secs(60));
    assert_eq!(with_jitter(delay, 0.25), Duration::from_secs(75));
    assert_eq!(with_jitter(delay, 1.0), Duration::from_secs(120));
}
