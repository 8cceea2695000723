//! Durability under SIGKILL. A child process applies transitions and
//! acknowledges each after its commit returns; it is killed at a random point (seeded)
//! twenty times per backend. After each kill the database must hold every acknowledged
//! transition as acknowledged (the record's state and input), no half-written one
//! (history length equals version for every instance; the pending timers are exactly
//! those of the current state entry; one notification per transition in the outbox), and
//! a history chain that verifies. A PostgreSQL variant kills the database server too
//! (`pg_ctl stop -m immediate` on a throwaway cluster of its own, then a restart).

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use grantflow_store::{Store, audit};
use grantflow_testkit::pg_cluster::PgCluster;
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

/// What the writer acknowledged for one transition: the state reached and the note given.
type Acks = HashMap<(Uuid, i64), (String, String)>;

/// Run the writer, wait for `acks` acknowledgements read from its stdout, call
/// `before_kill` (e.g. to stop the database server under it), SIGKILL it.
fn run_and_kill(url: &str, acks: u64, acked: &mut HashMap<Uuid, i64>, all: &mut Acks) {
    run_and_kill_with(url, acks, acked, all, || {});
}

fn run_and_kill_with(
    url: &str,
    acks: u64,
    acked: &mut HashMap<Uuid, i64>,
    all: &mut Acks,
    before_kill: impl FnOnce(),
) {
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
        let state = parts.next().expect("state").to_string();
        let note = parts.next().expect("note").to_string();
        let previous = acked.insert(id, version).unwrap_or(0);
        assert!(version > previous, "acknowledged versions only grow");
        all.insert((id, version), (state, note));
        seen += 1;
    }
    before_kill();
    // (The writer may have stopped by itself when its database server died.)
    if child.try_wait().expect("poll the writer").is_none() {
        child.kill().expect("SIGKILL the writer");
    }
    child.wait().expect("reap the writer");
}

async fn check(store: &dyn Store, acked: &HashMap<Uuid, i64>, all: &Acks, round: usize) {
    for ((id, version), (state, note)) in all {
        let history = store.history(*id).await.expect("history");
        let record = history
            .iter()
            .find(|r| r.seq == *version)
            .unwrap_or_else(|| {
                panic!("round {round}: the acknowledged record {version} of {id} is missing")
            });
        assert_eq!(
            (record.to_state.as_str(), record.input["note"].as_str()),
            (state.as_str(), Some(note.as_str())),
            "round {round}: record {version} of {id} is not what was acknowledged"
        );
    }
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
        check_entry_effects(store, &inst, round).await;
    }
    let report = audit::verify_all(store).await.expect("audit");
    assert!(report.is_ok(), "round {round}: {report}");
}

/// What a transition writes besides the record: the pending timers are exactly those of
/// the current state entry (the states have the same deadline, so the same timer keys as
/// the entry at creation), and the outbox holds one notification per transition.
async fn check_entry_effects(store: &dyn Store, inst: &grantflow_store::Instance, round: usize) {
    let timers = store.timers_for_instance(inst.id).await.expect("timers");
    let keys_at = |entry: i64, pending: bool| -> BTreeSet<String> {
        timers
            .iter()
            .filter(|t| t.state_entry == entry)
            .filter(|t| !pending || t.status == grantflow_store::TimerStatus::Pending)
            .map(|t| t.key.clone())
            .collect()
    };
    let scheduled = keys_at(0, false);
    assert!(
        !scheduled.is_empty(),
        "round {round}: the first entry has timers"
    );
    let pending: Vec<_> = timers
        .iter()
        .filter(|t| t.status == grantflow_store::TimerStatus::Pending)
        .collect();
    assert!(
        pending
            .iter()
            .all(|t| t.state_entry == inst.version && t.state == inst.state),
        "round {round}: {} has pending timers of another state entry than {} ({}): {pending:?}",
        inst.id,
        inst.version,
        inst.state
    );
    assert_eq!(
        keys_at(inst.version, true),
        scheduled,
        "round {round}: {} at version {} lacks timers of its state entry",
        inst.id,
        inst.version
    );
    let versions: BTreeSet<i64> = store
        .list_outbox(None, Some(inst.id), 100_000)
        .await
        .expect("outbox")
        .iter()
        .map(|m| {
            m.idempotency_key
                .split(':')
                .nth(2)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("a notification key: {}", m.idempotency_key))
        })
        .collect();
    assert_eq!(
        versions,
        (1..=inst.version).collect::<BTreeSet<i64>>(),
        "round {round}: {} at version {}: one notification per transition",
        inst.id,
        inst.version
    );
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
    let mut all = Acks::new();
    for round in 0..ROUNDS {
        let acks = 1 + rng.below(60);
        run_and_kill(url, acks, &mut acked, &mut all);
        let store = reopen(url).await;
        check(store.as_ref(), &acked, &all, round).await;
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

// ------------------------------------------------------------------ the server dies too

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_the_server_and_the_writer_killed() {
    // A throwaway cluster of this test's own (never the shared server other tests use),
    // with fsync on: a killed server must keep every acknowledged commit.
    let cluster = PgCluster::start_durable();
    let url = cluster.url("postgres");
    let mut rng = Rng(0x5eed_0003);
    let mut acked = HashMap::new();
    let mut all = Acks::new();
    for round in 0..6 {
        let acks = 1 + rng.below(60);
        run_and_kill_with(&url, acks, &mut acked, &mut all, || {
            cluster.kill_immediately();
        });
        cluster.start();
        let store = reopen(&url).await;
        check(store.as_ref(), &acked, &all, round).await;
    }
    assert!(acked.len() >= 6, "every round acknowledged transitions");
}
