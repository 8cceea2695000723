//! A PostgreSQL cluster of the test's own (`initdb` / `pg_ctl` in a temporary folder, on a
//! free port), to stop, restart or fail over without touching the shared server other
//! tests use. Run as the `postgres` user when the test runs as root (PostgreSQL refuses
//! root).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = "/usr/lib/postgresql/15/bin";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct PgCluster {
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub port: u16,
    log: PathBuf,
}

impl PgCluster {
    /// A new cluster (trust authentication on loopback), started.
    pub fn start_new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("grantflow-pg-")
            .tempdir()
            .unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = dir.path().join("data");
        let data_s = data.to_str().unwrap().to_string();
        run(
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let cluster = Self {
            log: dir.path().join("postgres.log"),
            _dir: dir,
            data,
            port: free_port(),
        };
        cluster.start();
        cluster
    }

    /// A streaming standby of `primary` (`pg_basebackup -R`), started.
    pub fn standby_of(primary: &Self) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("grantflow-pg-standby-")
            .tempdir()
            .unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
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
            _dir: dir,
            data,
            port: free_port(),
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
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.display()
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
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = command("pg_ctl")
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}
