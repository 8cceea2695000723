//! Mail configuration: an SMTP relay, or a folder of `.eml` files when no server is configured.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// Where outgoing mail goes.
///
/// In TOML (the `transport` key selects the variant):
///
/// ```toml
/// [mail]
/// transport = "smtp"
/// host = "smtp.example.gov.cn"
/// port = 465                # optional: 25 for none, 587 for starttls, 465 for tls
/// security = "tls"          # none | starttls | tls
/// username = "grantflow"    # optional; AUTH is used only when username and password are set
/// password = "..."          # never printed: Debug shows [REDACTED]
/// from = { name = "广东省知识产权项目管理系统", address = "noreply@example.gov.cn" }
/// timeout_secs = 60       # one delivery attempt, connect to last reply
/// hello_name = "grantflow.example.gov.cn"   # optional: EHLO name, defaults to this host's name
/// ```
///
/// or, the default when nothing is configured:
///
/// ```toml
/// [mail]
/// transport = "eml_folder"
/// dir = "outbox-eml"
/// ```
///
/// `Debug` is derived: the password is a [`SecretString`], whose `Debug` prints `[REDACTED]`.
///
/// Every key has its own default, so `[mail] dir = "…"` alone (or
/// `GRANTFLOW_MAIL__DIR=…`) is a complete configuration: `transport` defaults to
/// `eml_folder`. Only `host` has no default, and only with `transport = "smtp"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawMailConfig")]
pub enum MailConfig {
    Smtp(SmtpConfig),
    EmlFolder(EmlFolderConfig),
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Transport {
    Smtp,
    #[default]
    EmlFolder,
}

/// `[mail]` as written: every key optional; [`MailConfig::try_from`] applies the
/// defaults and refuses keys that do not belong to the chosen transport.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailConfig {
    #[serde(default)]
    transport: Transport,
    host: Option<String>,
    port: Option<u16>,
    security: Option<SmtpSecurity>,
    username: Option<String>,
    password: Option<SecretString>,
    from: Option<Sender>,
    timeout_secs: Option<u64>,
    hello_name: Option<String>,
    extra_root_certificates: Option<PathBuf>,
    dir: Option<PathBuf>,
}

impl TryFrom<RawMailConfig> for MailConfig {
    type Error = String;

    fn try_from(raw: RawMailConfig) -> Result<Self, String> {
        let from = raw.from.unwrap_or_default();
        match raw.transport {
            Transport::Smtp => {
                if raw.dir.is_some() {
                    return Err("`mail.dir` applies only to transport = \"eml_folder\"".into());
                }
                let host = raw
                    .host
                    .ok_or("`mail.host` is required with transport = \"smtp\"")?;
                Ok(Self::Smtp(SmtpConfig {
                    host,
                    port: raw.port,
                    security: raw.security.unwrap_or(SmtpSecurity::Starttls),
                    username: raw.username,
                    password: raw.password,
                    from,
                    timeout_secs: raw.timeout_secs.unwrap_or_else(default_timeout_secs),
                    hello_name: raw.hello_name,
                    extra_root_certificates: raw.extra_root_certificates,
                }))
            }
            Transport::EmlFolder => {
                let smtp_only = [
                    ("host", raw.host.is_some()),
                    ("port", raw.port.is_some()),
                    ("security", raw.security.is_some()),
                    ("username", raw.username.is_some()),
                    ("password", raw.password.is_some()),
                    ("timeout_secs", raw.timeout_secs.is_some()),
                    ("hello_name", raw.hello_name.is_some()),
                    (
                        "extra_root_certificates",
                        raw.extra_root_certificates.is_some(),
                    ),
                ];
                if let Some((key, _)) = smtp_only.iter().find(|(_, set)| *set) {
                    return Err(format!(
                        "`mail.{key}` applies only to transport = \"smtp\" (transport is \"eml_folder\")"
                    ));
                }
                Ok(Self::EmlFolder(EmlFolderConfig {
                    dir: raw.dir.unwrap_or_else(default_eml_dir),
                    from,
                }))
            }
        }
    }
}

impl Default for MailConfig {
    /// No SMTP server configured: messages are written to `./outbox-eml`.
    fn default() -> Self {
        Self::EmlFolder(EmlFolderConfig::default())
    }
}

impl MailConfig {
    /// The sender of every message.
    pub fn sender(&self) -> &Sender {
        match self {
            Self::Smtp(smtp) => &smtp.from,
            Self::EmlFolder(folder) => &folder.from,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Defaults by `security`: 25 (none), 587 (starttls), 465 (tls).
    #[serde(default)]
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    pub from: Sender,
    /// Limit for one delivery attempt, from connecting to the server's answer to the message.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Name sent with EHLO; the local host name when absent.
    #[serde(default)]
    pub hello_name: Option<String>,
    /// PEM file with extra trusted root certificates, for relays behind a private CA
    /// (common on government intranets). The public web roots stay trusted.
    #[serde(default)]
    pub extra_root_certificates: Option<PathBuf>,
}

impl SmtpConfig {
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        })
    }
}

fn default_timeout_secs() -> u64 {
    60
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain text; only for a relay on the same host or a test server.
    None,
    /// Plain connection upgraded with STARTTLS, which is required (never falls back to plain).
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmlFolderConfig {
    #[serde(default = "default_eml_dir")]
    pub dir: PathBuf,
    #[serde(default)]
    pub from: Sender,
}

impl Default for EmlFolderConfig {
    fn default() -> Self {
        Self {
            dir: default_eml_dir(),
            from: Sender::default(),
        }
    }
}

fn default_eml_dir() -> PathBuf {
    PathBuf::from("outbox-eml")
}

/// The `From:` of every message: a display name and an address (each defaults alone).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sender {
    pub name: String,
    pub address: String,
}

impl Default for Sender {
    fn default() -> Self {
        Self {
            name: "grantflow".to_owned(),
            address: "noreply@grantflow.localhost".to_owned(),
        }
    }
}
