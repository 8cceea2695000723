//! Delivering a message: SMTP, or a folder of `.eml` files; failures classified for retry.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use lettre::transport::smtp::{
    authentication::Credentials,
    client::{Certificate, Tls, TlsParameters},
    extension::ClientId,
    response::Severity,
};
use secrecy::ExposeSecret;

use crate::{
    config::{EmlFolderConfig, MailConfig, Sender, SmtpConfig, SmtpSecurity},
    message::{OutgoingEmail, build_message, message_id},
    session::MailSession,
};

/// Why a message was not delivered, and so what the outbox does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Try again later ([`next_attempt_delay`]): a 4xx reply (e.g. 451), a refused or dropped
    /// connection, a timeout, a failed TLS handshake, a full disk.
    #[error("transient delivery failure{}: {reason}", code.map(|code| format!(" ({code})")).unwrap_or_default())]
    Transient { code: Option<u16>, reason: String },
    /// The server refused the message for good with a 5xx reply (e.g. 550): dead letter.
    #[error("permanent delivery failure ({code}): {reason}")]
    Permanent { code: u16, reason: String },
    /// The message cannot be sent as it is, or not to this server (an invalid address, a
    /// server without STARTTLS when it is required, …): retrying will not help; dead letter.
    #[error("message cannot be sent: {reason}")]
    Unsendable { reason: String },
}

impl DeliveryError {
    /// Whether the outbox should try again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

impl From<lettre::transport::smtp::Error> for DeliveryError {
    fn from(err: lettre::transport::smtp::Error) -> Self {
        let reason = describe(&err);
        if let Some(code) = err.status() {
            let number = u16::from(code);
            return match code.severity {
                Severity::PermanentNegativeCompletion => Self::Permanent {
                    code: number,
                    reason,
                },
                // 4xx, and any other unexpected reply: the server may behave tomorrow.
                _ => Self::Transient {
                    code: Some(number),
                    reason,
                },
            };
        }
        if err.is_client() {
            return Self::Unsendable { reason };
        }
        // Connection refused or reset, timeouts, TLS handshakes, garbled replies, shutdown.
        Self::Transient { code: None, reason }
    }
}

/// lettre's `Display` shows only the outer layer ("Connection error"); the cause says why.
pub(crate) fn describe(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !out.contains(&cause_text) {
            out.push_str(": ");
            out.push_str(&cause_text);
        }
        source = cause.source();
    }
    out
}

/// The delay before the next attempt after `attempts` failed ones: 30 s, 1 min, 2 min, 4 min, …
/// doubling up to 1 h. `attempts` 0 and 1 both give 30 s. Deterministic: add jitter with
/// [`with_jitter`] using the caller's random source.
pub fn next_attempt_delay(attempts: u32) -> Duration {
    const BASE_SECS: u64 = 30;
    const CAP_SECS: u64 = 60 * 60;
    let doublings = attempts.saturating_sub(1);
    // 2^7 · 30 s already exceeds the cap; larger shifts would overflow.
    if doublings >= 7 {
        return Duration::from_secs(CAP_SECS);
    }
    Duration::from_secs((BASE_SECS << doublings).min(CAP_SECS))
}

/// Spreads retries of many messages that failed together: keeps half of `delay` and scales the
/// other half by `unit` (a sample in `[0, 1]` from the caller's RNG, clamped).
pub fn with_jitter(delay: Duration, unit: f64) -> Duration {
    let unit = if unit.is_nan() {
        0.0
    } else {
        unit.clamp(0.0, 1.0)
    };
    let half = delay / 2;
    half + half.mul_f64(unit)
}

/// Sends messages as configured. Cheap to clone; build it once at start-up.
#[derive(Debug, Clone)]
pub enum Mailer {
    Smtp(SmtpMailer),
    EmlFolder(EmlFolderMailer),
}

#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("invalid sender address {address:?}: {reason}")]
    InvalidSender { address: String, reason: String },
    #[error("reading extra root certificates from {path}: {reason}")]
    RootCertificates { path: PathBuf, reason: String },
    #[error("TLS setup for {host}: {reason}")]
    Tls { host: String, reason: String },
}

impl Mailer {
    pub fn from_config(config: &MailConfig) -> Result<Self, MailConfigError> {
        check_sender(config.sender())?;
        Ok(match config {
            MailConfig::Smtp(smtp) => Self::Smtp(SmtpMailer::new(smtp)?),
            MailConfig::EmlFolder(folder) => Self::EmlFolder(EmlFolderMailer::new(folder)),
        })
    }

    pub async fn send(&self, email: &OutgoingEmail) -> Result<(), DeliveryError> {
        match self {
            Self::Smtp(smtp) => smtp.send(email).await,
            Self::EmlFolder(folder) => folder.send(email).await,
        }
    }

    /// A session for a batch of messages: over SMTP they share one connection for as long
    /// as the relay keeps it open. [`MailSession::close`] it at the end of the batch.
    pub fn session(&self) -> MailSession<'_> {
        MailSession::new(self)
    }
}

fn check_sender(from: &Sender) -> Result<(), MailConfigError> {
    from.address
        .parse::<lettre::Address>()
        .map(drop)
        .map_err(|err| MailConfigError::InvalidSender {
            address: from.address.clone(),
            reason: err.to_string(),
        })
}

/// Delivery over SMTP. [`SmtpMailer::send`] uses a connection of its own;
/// [`Mailer::session`] sends a batch of messages over one connection (see
/// [`crate::MailSession`]).
///
/// lettre's async transport bounds only the TCP connect, and its pool would hand out a
/// connection left mid-command by a cancelled send; so the workspace builds lettre without
/// `pool`, and a session owns its one connection: every exchange runs under one deadline,
/// and a connection whose exchange failed or timed out is dropped, never reused.
#[derive(Clone)]
pub struct SmtpMailer {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: Tls,
    pub(crate) hello_name: ClientId,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) from: Sender,
    pub(crate) server: String,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for SmtpMailer {
    // The mailer holds the credentials; show only where mail goes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    pub fn new(config: &SmtpConfig) -> Result<Self, MailConfigError> {
        let port = config.effective_port();
        let timeout = Duration::from_secs(config.timeout_secs);
        let tls = match config.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::Starttls => Tls::Required(tls_parameters(config)?),
            _ => Tls::Wrapper(tls_parameters(config)?),
        };
        let hello_name = config
            .hello_name
            .clone()
            .map_or_else(ClientId::default, ClientId::Domain);
        let mut credentials = None;
        if let (Some(username), Some(password)) = (&config.username, &config.password) {
            let loopback = config.host == "localhost"
                || config
                    .host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if config.security == SmtpSecurity::None && !loopback {
                tracing::warn!(
                    host = %config.host,
                    "SMTP credentials will cross the network unencrypted: set security to starttls or tls"
                );
            }
            credentials = Some(Credentials::new(
                username.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            host: config.host.clone(),
            port,
            tls,
            hello_name,
            credentials,
            from: config.from.clone(),
            server: format!("{}:{port}", config.host),
            timeout,
        })
    }

    /// One message over a connection of its own.
    pub async fn send(&self, email: &OutgoingEmail) -> Result<(), DeliveryError> {
        let mut session = crate::session::SmtpSession::new(self);
        let sent = session.send(email).await;
        session.close().await;
        sent
    }
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, MailConfigError> {
    let tls_error = |err: lettre::transport::smtp::Error| MailConfigError::Tls {
        host: config.host.clone(),
        reason: describe(&err),
    };
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.extra_root_certificates {
        let pem = std::fs::read(path).map_err(|err| MailConfigError::RootCertificates {
            path: path.clone(),
            reason: err.to_string(),
        })?;
        let certificate =
            Certificate::from_pem(&pem).map_err(|err| MailConfigError::RootCertificates {
                path: path.clone(),
                reason: describe(&err),
            })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().map_err(tls_error)
}

/// Writes each message to `<dir>/<message-id>.eml`, for development and installations
/// without an SMTP server. A re-sent message overwrites its earlier file.
#[derive(Debug, Clone)]
pub struct EmlFolderMailer {
    dir: PathBuf,
    from: Sender,
}

impl EmlFolderMailer {
    pub fn new(config: &EmlFolderConfig) -> Self {
        Self {
            dir: config.dir.clone(),
            from: config.from.clone(),
        }
    }

    /// The file a message is (or will be) written to.
    pub fn path_for(&self, email: &OutgoingEmail) -> PathBuf {
        let id = message_id(&email.idempotency_key);
        self.dir.join(format!(
            "{}.eml",
            id.trim_start_matches('<').trim_end_matches('>')
        ))
    }

    pub async fn send(&self, email: &OutgoingEmail) -> Result<(), DeliveryError> {
        let bytes = build_message(&self.from, email)?.formatted();
        let path = self.path_for(email);
        let dir = self.dir.clone();
        let target = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&dir, &target, &bytes))
            .await
            .map_err(|err| DeliveryError::Transient {
                code: None,
                reason: format!("writing task failed: {err}"),
            })?
            .map_err(|err| DeliveryError::Transient {
                code: None,
                reason: format!("writing {}: {err}", path.display()),
            })?;
        tracing::info!(
            message_id = %message_id(&email.idempotency_key),
            path = %path.display(),
            to = ?email.to.iter().map(|r| r.address.as_str()).collect::<Vec<_>>(),
            subject = %email.content.subject,
            "email written to the .eml folder"
        );
        Ok(())
    }
}

/// Temp file in the same folder, flushed to disk, then renamed over the target: a reader sees
/// either no file or the whole message, also after a crash.
fn write_atomically(dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, target)
    })();
    if result.is_err() {
        // Best effort: the error being returned matters more than a stray temp file.
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_keeps_at_least_half_the_delay_and_never_more_than_all_of_it() {
        let delay = Duration::from_secs(120);
        assert_eq!(with_jitter(delay, 0.0), Duration::from_secs(60));
        assert_eq!(with_jitter(delay, 0.5), Duration::from_secs(90));
        assert_eq!(with_jitter(delay, 1.0), delay);
        assert_eq!(with_jitter(delay, 7.0), delay);
        assert_eq!(with_jitter(delay, -1.0), Duration::from_secs(60));
        assert_eq!(with_jitter(delay, f64::NAN), Duration::from_secs(60));
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let transient = DeliveryError::Transient {
            code: Some(451),
            reason: "later".into(),
        };
        assert!(transient.is_transient());
        assert_eq!(
            transient.to_string(),
            "transient delivery failure (451): later"
        );
        assert!(
            !DeliveryError::Permanent {
                code: 550,
                reason: "no".into()
            }
            .is_transient()
        );
        assert!(
            !DeliveryError::Unsendable {
                reason: "bad".into()
            }
            .is_transient()
        );
    }
}
