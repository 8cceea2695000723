//! Layered configuration: built-in defaults → a TOML file (`grantflow.toml`, or the file
//! given with `--config`) → `GRANTFLOW_` environment variables (`__` separates nested keys:
//! `GRANTFLOW_MAIL__HOST`). Secrets (database passwords, the SMTP password) never appear
//! in `Debug` output or logs.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use grantflow_mail::MailConfig;
use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://grantflow.db` (the default, an embedded file) or `postgres://…`.
    pub database_url: String,
    /// Address to listen on.
    pub listen: String,
    /// Folder of workflow files (`*.toml`).
    pub workflows_dir: PathBuf,
    /// Working-day calendar; the shipped one when absent.
    pub calendar_file: Option<PathBuf>,
    /// Production mode: GraphiQL, introspection and field suggestions are off.
    pub production: bool,
    /// Public base URL, used in emails (password-reset links).
    pub public_url: String,
    pub mail: MailConfig,
    pub scheduler: SchedulerConfig,
    pub graphql: GraphqlConfig,
    pub auth: AuthConfig,
    pub postgres: PostgresPoolConfig,
    /// `pretty` or `json`.
    pub log_format: LogFormat,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Run the scheduler loop inside `grantflow serve`.
    pub enabled: bool,
    /// Longest wait between two looks at the timer table, in seconds.
    pub poll_interval_secs: u64,
    pub batch_size: u32,
    /// How long a claim on a timer or a message lasts before another process may take it.
    pub lease_secs: u64,
    /// Digest e-mails, e.g. `{ name = "daily", cron = "0 0 9 * * Mon-Fri", horizon_days = 7 }`;
    /// cron expressions are read in Asia/Shanghai and skip non-working days.
    pub digests: Vec<DigestConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    pub name: String,
    /// Six-field cron expression (sec min hour day month weekday).
    pub cron: String,
    #[serde(default = "default_horizon")]
    pub horizon_days: u32,
    /// Only on working days of the calendar.
    #[serde(default = "default_true")]
    pub working_days_only: bool,
}

fn default_horizon() -> u32 {
    7
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphqlConfig {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_batch: usize,
    pub body_limit_bytes: usize,
    pub timeout_secs: u64,
    /// Requests per minute per token (or per client address when anonymous).
    pub rate_limit_per_minute: u32,
    /// Allowed CORS origins; empty means same-origin only.
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub session_ttl_hours: i64,
    pub reset_ttl_minutes: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresPoolConfig {
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://grantflow.db".into(),
            listen: "127.0.0.1:8080".into(),
            workflows_dir: PathBuf::from("workflows"),
            calendar_file: None,
            production: false,
            public_url: "http://127.0.0.1:8080".into(),
            mail: MailConfig::default(),
            scheduler: SchedulerConfig::default(),
            graphql: GraphqlConfig::default(),
            auth: AuthConfig::default(),
            postgres: PostgresPoolConfig::default(),
            log_format: LogFormat::Pretty,
        }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            enabled: true,
            poll_interval_secs: 30,
            batch_size: 100,
            lease_secs: 120,
            digests: vec![DigestConfig {
                name: "daily".into(),
                cron: "0 0 9 * * *".into(),
                horizon_days: 7,
                working_days_only: true,
            }],
        }
    }
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        GraphqlConfig {
            max_depth: 12,
            max_complexity: 2000,
            max_aliases: 30,
            max_batch: 10,
            body_limit_bytes: 1024 * 1024,
            timeout_secs: 30,
            rate_limit_per_minute: 600,
            cors_origins: Vec::new(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_ttl_hours: 12,
            reset_ttl_minutes: 30,
        }
    }
}

impl Default for PostgresPoolConfig {
    fn default() -> Self {
        PostgresPoolConfig {
            max_connections: 10,
            acquire_timeout_secs: 10,
        }
    }
}

impl Config {
    /// Defaults, then `file` (or `./grantflow.toml` when present), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::new();
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "config file {} does not exist",
                    path.display()
                );
                figment = figment.merge(Toml::file(path));
            }
            None => {
                if Path::new("grantflow.toml").exists() {
                    figment = figment.merge(Toml::file("grantflow.toml"));
                }
            }
        }
        figment = figment.merge(
            Env::prefixed("GRANTFLOW_")
                .split("__")
                // These share the prefix but are not configuration keys: test-only
                // variables, the log filter and the path of the configuration file.
                .filter(|k| {
                    let k = k.as_str().to_ascii_lowercase();
                    !k.starts_with("test_") && k != "log" && k != "config"
                }),
        );
        figment
            .extract::<Config>()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {}", redact_error(&e.to_string())))
    }
}

/// A database URL with any password replaced by `***`, fit for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn redact_error(message: &str) -> String {
    message
        .split_whitespace()
        .map(|w| {
            if w.contains("://") {
                redact_url(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field("workflows_dir", &self.workflows_dir)
            .field("calendar_file", &self.calendar_file)
            .field("production", &self.production)
            .field("public_url", &self.public_url)
            .field("mail", &self.mail)
            .field("scheduler", &self.scheduler)
            .field("graphql", &self.graphql)
            .field("auth", &self.auth)
            .field("postgres", &self.postgres)
            .field("log_format", &self.log_format)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/grantflow"),
            "postgres://app:***@db:5432/grantflow"
        );
        assert_eq!(redact_url("sqlite://grantflow.db"), "sqlite://grantflow.db");
        let config = Config {
            database_url: "postgres://app:s3cret@db/x".into(),
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    #[allow(
        clippy::result_large_err,
        reason = "figment's Jail API returns its own error type"
    )]
    fn layers_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\n[graphql]\nmax_depth = 5\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("GRANTFLOW_GRAPHQL__MAX_DEPTH", "7");
            let config = Config::load(Some(&path)).unwrap();
            assert_eq!(config.listen, "0.0.0.0:9000");
            assert_eq!(
                config.graphql.max_depth, 7,
                "environment overrides the file"
            );
            assert_eq!(config.database_url, "sqlite://grantflow.db", "default kept");
            Ok(())
        });
    }

    #[test]
    #[allow(
        clippy::result_large_err,
        reason = "figment's Jail API returns its own error type"
    )]
    fn log_and_config_variables_are_not_configuration_keys() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GRANTFLOW_LOG", "debug");
            jail.set_env("GRANTFLOW_CONFIG", "/nonexistent.toml");
            jail.set_env("GRANTFLOW_TEST_POSTGRES_URL", "postgres://x@y/z");
            let config = Config::load(None).unwrap();
            assert_eq!(config.listen, "127.0.0.1:8080");
            Ok(())
        });
    }

    #[test]
    #[allow(
        clippy::result_large_err,
        reason = "figment's Jail API returns its own error type"
    )]
    fn one_nested_key_alone_is_a_whole_configuration() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GRANTFLOW_MAIL__DIR", "/var/spool/grantflow");
            jail.set_env("GRANTFLOW_SCHEDULER__BATCH_SIZE", "10");
            let config = Config::load(None).unwrap();
            let MailConfig::EmlFolder(folder) = &config.mail else {
                panic!("`mail.dir` alone keeps the default transport");
            };
            assert_eq!(folder.dir, PathBuf::from("/var/spool/grantflow"));
            assert_eq!(config.scheduler.batch_size, 10);
            assert!(
                config.scheduler.enabled,
                "the other scheduler keys keep their defaults"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.toml");
        std::fs::write(&path, "lisen = \"0.0.0.0:9000\"\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
    }
}
