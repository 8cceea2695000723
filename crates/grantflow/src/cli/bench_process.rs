//! The server as its own process, for its memory: `grantflow serve` started on the
//! benchmark's database (with the shipped workflows and the benchmark's own), driven over
//! HTTP with the benchmark's token, its resident set read from `/proc`. The in-process
//! benchmarks cannot tell the server's memory from the loader's and the client's.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use grantflow_store::bench::BENCH_WORKFLOW;

/// A running `grantflow serve`, killed (and its workflow folder removed) when dropped.
pub struct ServerProcess {
    child: Child,
    workflows: std::path::PathBuf,
    pub endpoint: String,
}

impl ServerProcess {
    /// Start `grantflow serve` (this executable) on `database_url`, with the workflows of
    /// `workflows_dir` and the benchmark workflow, the scheduler off, no rate limit, on a
    /// port of its choosing; wait until it says where it serves.
    pub async fn start(
        database_url: &str,
        workflows_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let workflows = std::env::temp_dir().join(format!(
            "grantflow-bench-workflows-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&workflows)?;
        for entry in std::fs::read_dir(workflows_dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                std::fs::copy(
                    &path,
                    workflows.join(path.file_name().context("a file name")?),
                )?;
            }
        }
        std::fs::write(workflows.join("bench.toml"), BENCH_WORKFLOW)?;
        // Port 0: the server binds a free port and prints where it serves.
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .env("GRANTFLOW_DATABASE_URL", database_url)
            .env("GRANTFLOW_LISTEN", "127.0.0.1:0")
            .env("GRANTFLOW_WORKFLOWS_DIR", &workflows)
            .env("GRANTFLOW_SCHEDULER__ENABLED", "false")
            .env("GRANTFLOW_GRAPHQL__RATE_LIMIT_PER_MINUTE", "100000000")
            .env("GRANTFLOW_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting `grantflow serve`")?;
        let stdout = child
            .stdout
            .take()
            .context("the server's standard output")?;
        let mut server = Self {
            child,
            workflows,
            endpoint: String::new(),
        };
        // Ready when it says so: `serve` prints its GraphQL address once it listens. The
        // reader goes on draining the output, so the server never writes to a closed pipe.
        let (tx, announced) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in
                std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok)
            {
                if let Some(at) = line.find("GraphQL at ") {
                    let rest = &line[at + "GraphQL at ".len()..];
                    let endpoint = rest
                        .split([',', ' '])
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(endpoint);
                    }
                }
            }
        });
        server.endpoint = tokio::time::timeout(Duration::from_secs(60), announced)
            .await
            .context("`grantflow serve` did not announce its address within a minute")?
            .context("`grantflow serve` stopped before it listened")?;
        Ok(server)
    }

    /// VmRSS and VmHWM of the server process, in MiB.
    pub fn rss(&self) -> (f64, f64) {
        rss_of(&format!("/proc/{}/status", self.child.id()))
    }
}

/// VmRSS and VmHWM, in MiB, from a process's `status` file (`/proc/self/status`, …).
pub fn rss_of(status_file: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(status_file).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.workflows);
    }
}
