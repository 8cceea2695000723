//! Process-test support: `grantflow serve` as a child process whose standard output is
//! read line by line (tests wait on what it prints, never on the clock), and small HTTP
//! helpers.

#![allow(dead_code, reason = "each test uses part of it")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// Guards every wait against a hang; never a timed assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

pub const DEMO_PASSWORD: &str = "Grantflow-demo-2024";

pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A `grantflow.toml` in `dir`: the shipped workflows, `database_url`, a free port, and
/// `extra` TOML appended.
pub fn write_config(dir: &Path, database_url: &str, extra: &str) -> PathBuf {
    let path = dir.join("grantflow.toml");
    std::fs::write(
        &path,
        format!(
            "database_url = \"{database_url}\"\nlisten = \"127.0.0.1:0\"\nworkflows_dir = \"{}\"\n{extra}\n",
            repo().join("workflows").display()
        ),
    )
    .unwrap();
    path
}

/// A running `grantflow serve`.
pub struct Server {
    pub child: Child,
    pub addr: String,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, standard output and standard error interleaved.
    pub seen: Vec<String>,
}

impl Server {
    /// Start `grantflow [--config] serve ARGS` and wait for the line naming its address.
    pub fn start(config: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_grantflow"));
        command
            .arg("--config")
            .arg(config)
            .arg("serve")
            .args(args)
            .env_remove("GRANTFLOW_LOG")
            .env_remove("GRANTFLOW_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start grantflow serve");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        // Both streams, line by line, into one channel: tests wait on printed lines and on
        // log lines alike. It closes when both streams have (the process exited).
        let (tx, lines) = mpsc::channel();
        let err_tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if err_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            addr: String::new(),
            lines,
            seen: vec![],
        };
        let line = server.wait_line(|l| l.starts_with("grantflow: console at http://"));
        server.addr = line
            .trim_start_matches("grantflow: console at http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line of standard output that satisfies `pred` (earlier lines are kept in
    /// `seen`). Panics when the output ends first.
    pub fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(HANG_GUARD) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "grantflow ended or hung before the expected line; output: {:#?}",
                        self.seen
                    );
                }
            }
        }
    }

    /// Send a signal (`TERM`, `KILL`, `INT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Wait for the process to exit (its output closes first); the exit status and
    /// everything it printed.
    pub fn wait_exit(mut self) -> (ExitStatus, String) {
        while let Ok(line) = self.lines.recv_timeout(HANG_GUARD) {
            self.seen.push(line);
        }
        let status = self.child.wait().expect("wait for grantflow");
        (status, self.seen.join("\n"))
    }

    /// A line printed so far that starts with `prefix`, without it.
    pub fn printed(&self, prefix: &str) -> Option<String> {
        self.seen
            .iter()
            .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POST a GraphQL operation; the JSON response.
pub async fn graphql(
    server_url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("{server_url}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request
        .send()
        .await
        .expect("POST /graphql")
        .json()
        .await
        .expect("a JSON answer")
}

/// The demo's open call: applications belong to a stored call (and one of its items,
/// [`DEMO_ITEM`], for which a unit in a city may apply).
pub async fn open_call(server_url: &str, token: &str) -> String {
    let answer = graphql(
        server_url,
        Some(token),
        "{ calls { id status } }",
        json!({}),
    )
    .await;
    answer["data"]["calls"]
        .as_array()
        .and_then(|calls| calls.iter().find(|c| c["status"] == "OPEN"))
        .and_then(|c| c["id"].as_str())
        .unwrap_or_else(|| panic!("no open call in the demo: {answer}"))
        .to_string()
}

/// A 保留省级 item of the 2022 catalogue that units in a city may apply for.
pub const DEMO_ITEM: &str = "2022-2-1-5";

/// Log in as a demo account; the bearer token.
pub async fn login(server_url: &str, username: &str) -> String {
    let answer = graphql(
        server_url,
        None,
        "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
        json!({ "u": username, "p": DEMO_PASSWORD }),
    )
    .await;
    answer["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login as {username}: {answer}"))
        .to_string()
}
/// The throwaway PostgreSQL clusters live in the test kit.
pub use grantflow_testkit::pg_cluster;
pub mod load;
