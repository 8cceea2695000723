//! A PostgreSQL cluster of the test's own (`initdb` / `pg_ctl` in a temporary folder, on a
//! free port), to stop, kill, restart or fail over without touching the shared server
//! other tests use. Run as the `postgres` user when the test runs as root (PostgreSQL
//! refuses root). Stopped (immediately) and removed on drop.
//!
//! Two kinds: [`PgCluster::start_new`] is fast (`fsync=off`, for tests that stop the
//! server cleanly or fail over), [`PgCluster::start_durable`] keeps `fsync` and
//! `synchronous_commit` on, for tests that kill the server (`pg_ctl stop -m immediate`,
//! as in a power cut) and then check that every acknowledged commit survived.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = "/usr/lib/postgresql/15/bin";

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// PostgreSQL's `tool`, as the postgres user when we are root.
fn command(tool: &str) -> Command {
    let program = Path::new(BIN).join(tool);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    }
}

/// `tool args…`; panics with its output on failure.
fn run(tool: &str, args: &[&str]) {
    let program = Path::new(BIN).join(tool);
    let output = command(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e} (install postgresql-15)", program.display()));
    assert!(
        output.status.success(),
        "{tool} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temporary directory the postgres user owns.
fn own_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap();
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
    dir
}

pub struct PgCluster {
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub port: u16,
    log: PathBuf,
    socket_dir: PathBuf,
    durable: bool,
}

impl PgCluster {
    /// A new cluster (trust authentication on loopback, `fsync=off`), started.
    pub fn start_new() -> Self {
        Self::init(false)
    }

    /// A new cluster with `fsync` and `synchronous_commit` on, started: what a test that
    /// kills the server and counts acknowledged commits needs.
    pub fn start_durable() -> Self {
        Self::init(true)
    }

    fn init(durable: bool) -> Self {
        let dir = own_dir("grantflow-pg-");
        let data = dir.path().join("data");
        let data_s = data.to_str().unwrap().to_string();
        let mut args = vec![
            "-D",
            &data_s,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ];
        if !durable {
            args.push("--no-sync");
        }
        run("initdb", &args);
        let cluster = Self {
            log: dir.path().join("postgres.log"),
            socket_dir: dir.path().to_path_buf(),
            _dir: dir,
            data,
            port: free_port(),
            durable,
        };
        cluster.start();
        cluster
    }

    /// A streaming standby of `primary` (`pg_basebackup -R`), started.
    pub fn standby_of(primary: &Self) -> Self {
        let dir = own_dir("grantflow-pg-standby-");
        let data = dir.path().join("data");
        run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
            ],
        );
        let cluster = Self {
            log: dir.path().join("postgres.log"),
            socket_dir: dir.path().to_path_buf(),
            _dir: dir,
            data,
            port: free_port(),
            durable: primary.durable,
        };
        cluster.start();
        cluster
    }

    /// Promote a standby to primary and wait until it is one.
    pub fn promote(&self) {
        run(
            "pg_ctl",
            &["-D", self.data.to_str().unwrap(), "-w", "promote"],
        );
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Start and wait until it accepts connections.
    pub fn start(&self) {
        let sync = if self.durable {
            "-c fsync=on -c synchronous_commit=on"
        } else {
            "-c fsync=off"
        };
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 {sync}",
            self.port,
            self.socket_dir.display()
        );
        run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                self.log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// Stop (fast: clients are disconnected) and wait until it is down.
    pub fn stop(&self) {
        run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// The server dies as in a power cut (`-m immediate`): no checkpoint, recovery from
    /// the WAL on the next [`start`](Self::start).
    pub fn kill_immediately(&self) {
        run(
            "pg_ctl",
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Best effort: the cluster may already be down.
        let _stopped = command("pg_ctl")
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}
