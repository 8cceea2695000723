//! Durability under SIGKILL. A child process applies transitions and
//! acknowledges each after its commit returns; it is killed at a random point (seeded)
//! twenty times per backend. After each kill the database must hold every acknowledged
//! transition, no half-written one (history length equals version for every instance),
//! and a history chain that verifies.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use grantflow_store::{Store, audit};
use uuid::Uuid;

const ROUNDS: usize = 20;
const WRITERS: &str = "4";

/// A small deterministic generator (xorshift64*), so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Run the writer, wait for `acks` acknowledgements read from its stdout, SIGKILL it.
fn run_and_kill(url: &str, acks: u64, acked: &mut HashMap<Uuid, i64>) {
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
        .args([url, WRITERS])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start crash_writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").expect("read");
    assert_eq!(first, "ready", "the writer starts");
    let mut seen = 0;
    while seen < acks {
        let line = lines
            .next()
            .expect("the writer keeps acknowledging until killed")
            .expect("read");
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("ack"), "{line}");
        let id: Uuid = parts.next().expect("id").parse().expect("uuid");
        let version: i64 = parts.next().expect("version").parse().expect("version");
        let previous = acked.insert(id, version).unwrap_or(0);
        assert!(version > previous, "acknowledged versions only grow");
        seen += 1;
    }
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap the writer");
}

async fn check(store: &dyn Store, acked: &HashMap<Uuid, i64>, round: usize) {
    for (id, version) in acked {
        let inst = store.get_instance(*id).await.unwrap_or_else(|e| {
            panic!("round {round}: acknowledged instance {id} is missing: {e}")
        });
        assert!(
            inst.version >= *version,
            "round {round}: instance {id} acknowledged at version {version} but stored at {}",
            inst.version
        );
        let history = store.history(*id).await.expect("history");
        assert!(
            history.iter().any(|r| r.seq == *version),
            "round {round}: the acknowledged record {version} of {id} is missing"
        );
    }
    for id in store.instance_ids().await.expect("ids") {
        let inst = store.get_instance(id).await.expect("instance");
        let history = store.history(id).await.expect("history");
        assert_eq!(
            history.len() as i64,
            inst.version,
            "round {round}: instance {id} is half-written"
        );
    }
    let report = audit::verify_all(store).await.expect("audit");
    assert!(report.is_ok(), "round {round}: {report}");
}

/// Open the database as a restarted process would.
async fn reopen(url: &str) -> Box<dyn Store> {
    if url.starts_with("postgres") {
        let store = grantflow_store_postgres::PostgresStore::connect(url)
            .await
            .expect("reconnect");
        return Box::new(store);
    }
    let store = grantflow_store_sqlite::SqliteStore::connect(url)
        .await
        .expect("reopen");
    let integrity = grantflow_store_sqlite::testing::integrity_check(&store).await;
    assert_eq!(integrity, "ok", "PRAGMA integrity_check after the kill");
    Box::new(store)
}

async fn crash_rounds(url: &str, seed: u64) {
    let mut rng = Rng(seed);
    let mut acked = HashMap::new();
    for round in 0..ROUNDS {
        let acks = 1 + rng.below(60);
        run_and_kill(url, acks, &mut acked);
        let store = reopen(url).await;
        check(store.as_ref(), &acked, round).await;
    }
    assert!(
        acked.len() >= ROUNDS,
        "every round acknowledged transitions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    crash_rounds(&url, 0x5eed_0001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_sigkill() {
    let db = grantflow_store_postgres::testing::TempPostgres::new().await;
    crash_rounds(&db.url(), 0x5eed_0002).await;
}
