//! A real SMTP server on loopback for tests (feature `testkit`): Python's aiosmtpd running
//! `tests/smtp/smtp_server.py`, which saves every accepted message and can be told to fail.
//!
//! ```no_run
//! use grantflow_mail::{MailConfig, Mailer, testkit::SmtpTestServer};
//! # async fn example() {
//! let server = SmtpTestServer::start();
//! let mailer = Mailer::from_config(&MailConfig::Smtp(server.smtp_config())).unwrap();
//! // … send through `mailer` …
//! let received = server.wait_for_messages(1, std::time::Duration::from_secs(10));
//! assert_eq!(received[0].subject, "…");
//! # }
//! ```
//!
//! Needs `python3` (or the interpreter named by `GRANTFLOW_TEST_PYTHON`) with aiosmtpd:
//! `pip install -r tests/smtp/requirements.txt`. TLS servers also need the `openssl` command.
//! Without them, [`SmtpTestServer::start`] panics with these instructions: tests never skip.

use std::{
    fs,
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use mail_parser::{Address, MessageParser, MimeHeaders, PartType};
use tempfile::TempDir;

use crate::config::{Sender, SmtpConfig, SmtpSecurity};

const SERVER_SCRIPT: &str = include_str!("../../../tests/smtp/smtp_server.py");
const INSTALL_HINT: &str = "the SMTP test server needs Python 3 with aiosmtpd; install it with \
     `pip install -r tests/smtp/requirements.txt` (or `pip install aiosmtpd`), or point \
     GRANTFLOW_TEST_PYTHON at an interpreter that has it";
const STARTUP_DEADLINE: Duration = Duration::from_secs(20);

/// How the test server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TestTls {
    #[default]
    None,
    /// Plain connection, STARTTLS required before MAIL.
    Starttls,
    /// TLS from the first byte.
    Implicit,
}

/// Options for [`SmtpTestServer::start_with`].
#[derive(Debug, Clone, Default)]
pub struct TestServerOptions {
    /// Require AUTH (PLAIN or LOGIN) with this user name and password.
    pub auth: Option<(String, String)>,
    /// Serve TLS with a fresh self-signed certificate for `127.0.0.1` and `localhost`.
    pub tls: TestTls,
    /// The Python interpreter; default `$GRANTFLOW_TEST_PYTHON`, else `python3`.
    pub python: Option<String>,
}

/// A message the server accepted, parsed.
#[derive(Debug, Clone)]
pub struct ReceivedEmail {
    /// SMTP envelope (`MAIL FROM`, `RCPT TO`): where the message was actually delivered.
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    /// The user name the client authenticated with, if it did.
    pub auth_login: Option<String>,
    /// The connection that carried it, numbered from 1 in order of arrival (per launch).
    pub connection: u64,
    /// Headers.
    pub from: ReceivedAddress,
    pub to: Vec<ReceivedAddress>,
    pub cc: Vec<ReceivedAddress>,
    pub subject: String,
    /// With angle brackets, as [`crate::message_id`] returns it.
    pub message_id: String,
    /// The `text/plain` part, decoded.
    pub text_body: Option<String>,
    /// The `text/html` part, decoded.
    pub html_body: Option<String>,
    /// The `text/calendar` part, decoded (CRLFs kept).
    pub ics: Option<String>,
    /// The `Content-Type` of the calendar part, parameters included.
    pub ics_content_type: Option<String>,
    /// The message as received (DATA, dot-unstuffed).
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedAddress {
    pub name: Option<String>,
    pub address: String,
}

/// An aiosmtpd process on `127.0.0.1`, killed when dropped.
pub struct SmtpTestServer {
    port: u16,
    options: TestServerOptions,
    /// Holds the script, the spool, the control file, the log and the TLS files.
    workdir: TempDir,
    process: Option<(Child, ChildStdin)>,
    control_generation: u64,
    /// What the server printed, shared with the threads reading its output; waiting is
    /// done on the condition variable, which each printed line (or a [`Waker`]) wakes.
    output: Shared,
    /// Where the current launch's output starts in `output.text`.
    launch_start: usize,
}

#[derive(Debug, Default)]
struct Output {
    text: String,
    /// Output streams of the current launch still open; 0 once the process has exited.
    open_streams: usize,
    /// Counts launches, so that the readers of a stopped process cannot touch the count
    /// of the next one.
    launch: u64,
}

type Shared = Arc<(Mutex<Output>, Condvar)>;

/// Wakes whoever waits in [`SmtpTestServer::wait_until`], so that a test can wait for
/// messages *or* an event of its own (a child process exiting) without polling.
#[derive(Debug, Clone)]
pub struct Waker(Shared);

impl Waker {
    pub fn wake(&self) {
        let (lock, cvar) = &*self.0;
        // Taking the lock orders the caller's change before the waiter's next check.
        drop(
            lock.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        cvar.notify_all();
    }
}

impl std::fmt::Debug for SmtpTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTestServer")
            .field("port", &self.port)
            .field("running", &self.process.is_some())
            .field("workdir", &self.workdir.path())
            .finish()
    }
}

impl SmtpTestServer {
    /// Starts a plain SMTP server without AUTH on a free loopback port and waits until it
    /// accepts connections. Panics, saying how to install aiosmtpd, if it cannot run.
    pub fn start() -> Self {
        Self::start_with(TestServerOptions::default())
    }

    pub fn start_with(options: TestServerOptions) -> Self {
        check_aiosmtpd(&options.python());
        let workdir = tempfile::Builder::new()
            .prefix("grantflow-smtp-test-")
            .tempdir()
            .expect("creating the SMTP test server's folder");
        fs::write(workdir.path().join("smtp_server.py"), SERVER_SCRIPT)
            .expect("writing the SMTP test server script");
        fs::create_dir_all(workdir.path().join("spool")).expect("creating the spool folder");
        if options.tls != TestTls::None {
            make_certificate(workdir.path());
        }
        let mut server = Self {
            port: free_port(),
            options,
            workdir,
            process: None,
            control_generation: 0,
            output: Shared::default(),
            launch_start: 0,
        };
        server.accept_all();
        // The free port may be taken by someone else before the server binds it: take another.
        for _ in 0..5 {
            match server.launch() {
                Launch::Listening => return server,
                Launch::AddressInUse => server.port = free_port(),
            }
        }
        panic!("the SMTP test server found no free port:\n{}", server.log())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// An [`SmtpConfig`] that reaches this server: its port, its AUTH credentials, its TLS
    /// mode and certificate.
    pub fn smtp_config(&self) -> SmtpConfig {
        let (username, password) = match &self.options.auth {
            Some((user, password)) => (Some(user.clone()), Some(password.clone().into())),
            None => (None, None),
        };
        SmtpConfig {
            host: "127.0.0.1".to_owned(),
            port: Some(self.port),
            security: match self.options.tls {
                TestTls::None => SmtpSecurity::None,
                TestTls::Starttls => SmtpSecurity::Starttls,
                TestTls::Implicit => SmtpSecurity::Tls,
            },
            username,
            password,
            from: Sender {
                name: "广东省知识产权项目管理系统".to_owned(),
                address: "noreply@grantflow.test".to_owned(),
            },
            timeout_secs: 10,
            hello_name: Some("grantflow.test".to_owned()),
            extra_root_certificates: (self.options.tls != TestTls::None)
                .then(|| self.certificate_path()),
        }
    }

    /// The PEM certificate of a TLS server (self-signed: trust it as a root).
    pub fn certificate_path(&self) -> PathBuf {
        self.workdir.path().join("cert.pem")
    }

    /// Answers the next `count` DATA commands with `code text` (e.g. 451), then accepts again.
    pub fn fail_next(&mut self, count: u32, code: u16, text: &str) {
        self.write_control(serde_json::json!({
            "mode": "fail_next", "count": count, "code": code, "text": text,
        }));
    }

    /// Answers every DATA command with `code` until told otherwise.
    pub fn always_fail(&mut self, code: u16) {
        let text = if code >= 500 {
            "Requested action not taken: mailbox unavailable"
        } else {
            "Requested action aborted: try again later"
        };
        self.write_control(
            serde_json::json!({ "mode": "always_fail", "code": code, "text": text }),
        );
    }

    /// Reads each message but never answers the end of DATA, so that clients time out.
    pub fn stall(&mut self) {
        self.write_control(serde_json::json!({ "mode": "stall" }));
    }

    /// Accepts every message from now on, and closes each connection after `limit`
    /// messages (a relay's per-connection limit).
    pub fn close_after(&mut self, limit: u32) {
        self.write_control(serde_json::json!({ "mode": "accept", "max_per_connection": limit }));
    }

    /// Accepts every message from now on.
    pub fn accept_all(&mut self) {
        self.write_control(serde_json::json!({ "mode": "accept" }));
    }

    /// Every message accepted so far (also before a restart), in arrival order.
    pub fn received(&self) -> Vec<ReceivedEmail> {
        let spool = self.workdir.path().join("spool");
        let mut names: Vec<String> = fs::read_dir(&spool)
            .expect("reading the spool folder")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|name| {
                let raw = fs::read(spool.join(name)).expect("reading a received message");
                let envelope = fs::read(spool.join(name.replace(".eml", ".json")))
                    .expect("reading a received message's envelope");
                parse_received(raw, &envelope)
                    .unwrap_or_else(|problem| panic!("received message {name}: {problem}"))
            })
            .collect()
    }

    /// Waits until at least `count` messages have arrived; panics after `timeout`.
    pub fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<ReceivedEmail> {
        self.wait_until(timeout, |received| received.len() >= count)
            .unwrap_or_else(|received| {
                panic!(
                    "expected {count} messages within {timeout:?}, received {}",
                    received.len()
                )
            })
    }

    /// Waits until `done` holds for the messages received so far, re-checking each time
    /// the server stores a message or a [`Waker`] is woken. `Err` with what arrived when
    /// `timeout` passes first (the timeout only guards against a hang).
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[ReceivedEmail]) -> bool,
    ) -> Result<Vec<ReceivedEmail>, Vec<ReceivedEmail>> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.output;
        let mut guard = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            // Checked under the lock: a line printed after this check wakes the wait.
            let received = self.received();
            if done(&received) {
                return Ok(received);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(received);
            }
            guard = cvar
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// How many messages were accepted so far, without reading them (cheap enough to
    /// check after every message of a burst of thousands).
    pub fn received_count(&self) -> usize {
        fs::read_dir(self.workdir.path().join("spool"))
            .expect("reading the spool folder")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".eml"))
            .count()
    }

    /// Like [`wait_until`](Self::wait_until), on the number of messages accepted so far
    /// (nothing is parsed): `Err` with the count when `timeout` passes first.
    pub fn wait_until_count(
        &self,
        timeout: Duration,
        mut done: impl FnMut(usize) -> bool,
    ) -> Result<usize, usize> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.output;
        let mut guard = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            let count = self.received_count();
            if done(count) {
                return Ok(count);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(count);
            }
            guard = cvar
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// A handle that wakes [`wait_until`](Self::wait_until) from another thread.
    pub fn waker(&self) -> Waker {
        Waker(self.output.clone())
    }

    /// Kills the server: connections are refused until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.process.take() {
            drop(stdin);
            // It may already have exited; either way it must be reaped.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the same spool and control file.
    pub fn restart(&mut self) {
        self.stop();
        if self.launch() == Launch::AddressInUse {
            panic!(
                "the SMTP test server cannot restart: port {} was taken meanwhile:\n{}",
                self.port,
                self.log()
            );
        }
    }

    fn launch(&mut self) -> Launch {
        let dir = self.workdir.path();
        let mut command = Command::new(self.options.python());
        command
            .arg(dir.join("smtp_server.py"))
            .args(["--port", &self.port.to_string()])
            .arg("--spool")
            .arg(dir.join("spool"))
            .arg("--control")
            .arg(dir.join("control.json"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((user, password)) = &self.options.auth {
            command.args(["--auth-user", user, "--auth-password", password]);
        }
        match self.options.tls {
            TestTls::None => {}
            TestTls::Starttls | TestTls::Implicit => {
                command
                    .arg("--tls-cert")
                    .arg(dir.join("cert.pem"))
                    .arg("--tls-key")
                    .arg(dir.join("key.pem"))
                    .args([
                        "--tls-mode",
                        if self.options.tls == TestTls::Starttls {
                            "starttls"
                        } else {
                            "implicit"
                        },
                    ]);
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("starting the SMTP test server: {err}; {INSTALL_HINT}"));
        let stdin = child.stdin.take().expect("the server's stdin is piped");
        {
            let mut out = self
                .output
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.launch_start = out.text.len();
            out.open_streams = 2;
            out.launch += 1;
        }
        let launch = self
            .output
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .launch;
        let stdout = child.stdout.take().expect("the server's stdout is piped");
        let stderr = child.stderr.take().expect("the server's stderr is piped");
        read_lines(stdout, self.output.clone(), launch);
        read_lines(stderr, self.output.clone(), launch);
        self.process = Some((child, stdin));
        self.wait_until_listening()
    }

    /// Waits until the server says it listens on its port (it prints that once bound), or
    /// its output closes (it exited: the port was taken, or it could not start).
    fn wait_until_listening(&mut self) -> Launch {
        let bound = format!("listening on 127.0.0.1:{}", self.port);
        let deadline = Instant::now() + STARTUP_DEADLINE;
        let (listening, exited) = {
            let (lock, cvar) = &*self.output;
            let mut out = lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            loop {
                let since = &out.text[self.launch_start..];
                if since.contains(&bound) {
                    break (true, false);
                }
                if out.open_streams == 0 {
                    break (false, true);
                }
                let now = Instant::now();
                if now >= deadline {
                    break (false, false);
                }
                out = cvar
                    .wait_timeout(out, deadline - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
        };
        if listening {
            return Launch::Listening;
        }
        if exited {
            let (mut child, _) = self.process.take().expect("launched");
            let status = child.wait().expect("reaping the SMTP test server");
            let log = self.log();
            if log.to_ascii_lowercase().contains("address already in use") {
                return Launch::AddressInUse;
            }
            panic!(
                "the SMTP test server exited ({status}) before listening on port {}:\n{log}\n({INSTALL_HINT})",
                self.port,
            );
        }
        self.stop();
        panic!(
            "the SMTP test server did not listen on port {} within {STARTUP_DEADLINE:?}:\n{}",
            self.port,
            self.log()
        );
    }

    /// The server's stdout and stderr so far (every launch).
    pub fn log(&self) -> String {
        self.output
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .text
            .clone()
    }

    fn write_control(&mut self, mut control: serde_json::Value) {
        self.control_generation += 1;
        control["generation"] = self.control_generation.into();
        let dir = self.workdir.path();
        let temporary = dir.join("control.json.tmp");
        let mut file = fs::File::create(&temporary).expect("writing the control file");
        file.write_all(control.to_string().as_bytes())
            .expect("writing the control file");
        // The server reads it at the next DATA: it must see the whole file or the old one.
        fs::rename(&temporary, dir.join("control.json")).expect("replacing the control file");
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Launch {
    Listening,
    AddressInUse,
}

impl Drop for SmtpTestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl TestServerOptions {
    fn python(&self) -> String {
        self.python.clone().unwrap_or_else(|| {
            std::env::var("GRANTFLOW_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
        })
    }
}

fn check_aiosmtpd(python: &str) {
    let output = Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .unwrap_or_else(|err| panic!("running {python}: {err}; {INSTALL_HINT}"));
    assert!(
        output.status.success(),
        "{python} cannot import aiosmtpd ({}); {INSTALL_HINT}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// Copies one output stream of the server into the shared text, a line at a time, waking
/// waiters at each line and when the stream closes.
fn read_lines(stream: impl Read + Send + 'static, output: Shared, launch: u64) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).unwrap_or(0);
            let (lock, cvar) = &*output;
            let mut out = lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if n == 0 {
                if out.launch == launch {
                    out.open_streams = out.open_streams.saturating_sub(1);
                }
                drop(out);
                cvar.notify_all();
                return;
            }
            out.text.push_str(&line);
            drop(out);
            cvar.notify_all();
        }
    });
}

/// A port nobody listens on now. The OS does not hand it out again right away, and the
/// server binds it within milliseconds.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("finding a free loopback port")
        .port()
}

fn make_certificate(dir: &Path) {
    let output = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // An end-entity certificate: rustls refuses a CA certificate as a server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "running openssl to make a test certificate: {err}; install the `openssl` package"
            )
        });
    assert!(
        output.status.success(),
        "openssl could not make a test certificate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[derive(serde::Deserialize)]
struct Envelope {
    mail_from: String,
    rcpt_tos: Vec<String>,
    auth_login: Option<String>,
    connection: u64,
}

fn parse_received(raw: Vec<u8>, envelope: &[u8]) -> Result<ReceivedEmail, String> {
    let envelope: Envelope =
        serde_json::from_slice(envelope).map_err(|err| format!("envelope: {err}"))?;
    let parsed = MessageParser::default()
        .parse(&raw)
        .ok_or("not a parseable message")?;
    let from = addresses(parsed.from())
        .into_iter()
        .next()
        .ok_or("no From header")?;
    let mut text_body = None;
    let mut html_body = None;
    let mut ics = None;
    let mut ics_content_type = None;
    for part in &parsed.parts {
        let Some(content_type) = part.content_type() else {
            continue;
        };
        let subtype = content_type
            .subtype()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !content_type.ctype().eq_ignore_ascii_case("text") {
            continue;
        }
        let text = match &part.body {
            PartType::Text(text) | PartType::Html(text) => text.to_string(),
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                String::from_utf8(bytes.to_vec()).map_err(|err| format!("text part: {err}"))?
            }
            _ => continue,
        };
        match subtype.as_str() {
            "plain" if text_body.is_none() => text_body = Some(text),
            "html" if html_body.is_none() => html_body = Some(text),
            "calendar" if ics.is_none() => {
                ics = Some(text);
                let mut shown = "text/calendar".to_owned();
                for attribute in content_type.attributes().into_iter().flatten() {
                    shown.push_str(&format!("; {}={}", attribute.name, attribute.value));
                }
                ics_content_type = Some(shown);
            }
            _ => {}
        }
    }
    Ok(ReceivedEmail {
        envelope_from: envelope.mail_from,
        envelope_to: envelope.rcpt_tos,
        auth_login: envelope.auth_login,
        connection: envelope.connection,
        from,
        to: addresses(parsed.to()),
        cc: addresses(parsed.cc()),
        subject: parsed.subject().unwrap_or_default().to_owned(),
        message_id: parsed
            .message_id()
            .map(|id| format!("<{id}>"))
            .ok_or("no Message-ID header")?,
        text_body,
        html_body,
        ics,
        ics_content_type,
        raw,
    })
}

fn addresses(header: Option<&Address>) -> Vec<ReceivedAddress> {
    header
        .into_iter()
        .flat_map(|address| address.iter())
        .map(|addr| ReceivedAddress {
            name: addr.name.as_ref().map(ToString::to_string),
            address: addr
                .address
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        })
        .collect()
}
