//! Hearing the other replicas: `LISTEN` on [`EVENTS_CHANNEL`] over a connection of its
//! own, reconnecting (with a growing pause) whenever it drops. After every reconnection
//! the caller is told that announcements may have been missed meanwhile.

use std::time::Duration;

use grantflow_store::EVENTS_CHANNEL;
use sqlx::postgres::PgListener;

use crate::PostgresStore;

/// What the listener reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard<'a> {
    /// Listening (again). `first` is false after a reconnection: what was announced while
    /// the connection was down is lost.
    Listening { first: bool },
    /// One announcement's payload.
    Payload(&'a str),
}

/// Listen until the future is dropped, calling `on` for every report.
pub async fn listen(store: PostgresStore, mut on: impl FnMut(Heard<'_>) + Send) {
    const FIRST_PAUSE: Duration = Duration::from_millis(100);
    const LONGEST_PAUSE: Duration = Duration::from_secs(5);
    let mut first = true;
    let mut pause = FIRST_PAUSE;
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(store.pool()).await?;
            listener.listen(EVENTS_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "cannot listen for other replicas' events; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
                continue;
            }
        };
        pause = FIRST_PAUSE;
        if !first {
            tracing::info!("listening for other replicas' events again");
        }
        on(Heard::Listening { first });
        first = false;
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => on(Heard::Payload(notification.payload())),
                Ok(None) => {
                    tracing::warn!("the connection listening for other replicas' events dropped");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other replicas' events failed");
                    break;
                }
            }
        }
    }
}
