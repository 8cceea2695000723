//! Layered configuration: built-in defaults → a TOML file (`grantflow.toml`, or the file
//! given with `--config`) → `GRANTFLOW_` environment variables (`__` separates nested keys:
//! `GRANTFLOW_MAIL__HOST`). Secrets (the database URL, the SMTP password) are
//! `SecretString`s and never appear in `Debug` output or logs.
//!
//! Each section is the settings struct of the crate that uses it, deserialized directly
//! (`[graphql]` and `[auth]`: `grantflow_api`, `[scheduler]`: `grantflow_scheduler`,
//! `[mail]`: `grantflow_mail`), so every default is written once, beside its struct. The
//! README's configuration table is checked against these defaults by a test.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use grantflow_api::{AuthSettings, GraphqlSettings};
use grantflow_mail::MailConfig;
use grantflow_scheduler::SchedulerConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://grantflow.db` (the default, an embedded file) or `postgres://…`; secret,
    /// as it may hold the database password.
    pub database_url: SecretString,
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
    pub graphql: GraphqlSettings,
    pub auth: AuthSettings,
    pub postgres: PostgresPoolConfig,
    /// `pretty` or `json`.
    pub log_format: LogFormat,
    /// After SIGTERM or Ctrl-C: how long running requests and the scheduler's current batch
    /// may take before they are cut off (claims are given back either way).
    pub shutdown_grace_secs: u64,
    pub metrics: crate::metrics::MetricsConfig,
    pub telemetry: crate::telemetry::TelemetryConfig,
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
pub struct PostgresPoolConfig {
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://grantflow.db".into(),
            listen: "127.0.0.1:8080".into(),
            workflows_dir: PathBuf::from("workflows"),
            calendar_file: None,
            production: false,
            public_url: "http://127.0.0.1:8080".into(),
            mail: MailConfig::default(),
            scheduler: SchedulerConfig::default(),
            graphql: GraphqlSettings::default(),
            auth: AuthSettings::default(),
            postgres: PostgresPoolConfig::default(),
            log_format: LogFormat::Pretty,
            shutdown_grace_secs: 25,
            metrics: crate::metrics::MetricsConfig::default(),
            telemetry: crate::telemetry::TelemetryConfig::default(),
        }
    }
}

impl Default for PostgresPoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            // Short: while PostgreSQL is down (restart, failover) a request waits this long
            // for a connection, then fails with 503 UNAVAILABLE instead of hanging.
            acquire_timeout_secs: 3,
        }
    }
}

impl Config {
    /// Defaults, then `file` (or `./grantflow.toml` when present), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
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
            .extract::<Self>()
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
            .field(
                "database_url",
                &redact_url(self.database_url.expose_secret()),
            )
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
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("metrics", &self.metrics)
            .field("telemetry", &self.telemetry)
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
            assert_eq!(
                config.database_url.expose_secret(),
                "sqlite://grantflow.db",
                "default kept"
            );
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

    /// Every default, read from the structs (not written again here), by README key.
    fn defaults() -> Vec<(String, String)> {
        let c = Config::default();
        let g = &c.graphql;
        let s = &c.scheduler;
        let mail_transport = match &c.mail {
            MailConfig::Smtp(_) => "smtp",
            MailConfig::EmlFolder(_) => "eml_folder",
        };
        let log_format = match c.log_format {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        };
        [
            ("database_url", c.database_url.expose_secret().to_string()),
            ("listen", c.listen.clone()),
            ("workflows_dir", c.workflows_dir.display().to_string()),
            ("production", c.production.to_string()),
            ("public_url", c.public_url.clone()),
            ("log_format", log_format.to_string()),
            ("shutdown_grace_secs", c.shutdown_grace_secs.to_string()),
            (
                "metrics.listen",
                c.metrics.listen.clone().unwrap_or_else(|| "off".into()),
            ),
            (
                "telemetry.otlp_endpoint",
                c.telemetry
                    .otlp_endpoint
                    .clone()
                    .unwrap_or_else(|| "off".into()),
            ),
            ("telemetry.service_name", c.telemetry.service_name.clone()),
            (
                "telemetry.export_delay_ms",
                c.telemetry.export_delay_ms.to_string(),
            ),
            ("graphql.max_depth", g.max_depth.to_string()),
            ("graphql.max_complexity", g.max_complexity.to_string()),
            ("graphql.max_aliases", g.max_aliases.to_string()),
            ("graphql.max_batch", g.max_batch.to_string()),
            ("graphql.body_limit_bytes", g.body_limit_bytes.to_string()),
            ("graphql.timeout_secs", g.timeout_secs.to_string()),
            (
                "graphql.rate_limit_per_minute",
                g.rate_limit_per_minute.to_string(),
            ),
            ("graphql.cors_origins", format!("{:?}", g.cors_origins)),
            (
                "graphql.trusted_proxy_hops",
                g.trusted_proxy_hops.to_string(),
            ),
            (
                "graphql.document_cache_entries",
                g.document_cache_entries.to_string(),
            ),
            (
                "auth.session_ttl_hours",
                c.auth.session_ttl_hours.to_string(),
            ),
            (
                "auth.reset_ttl_minutes",
                c.auth.reset_ttl_minutes.to_string(),
            ),
            (
                "postgres.max_connections",
                c.postgres.max_connections.to_string(),
            ),
            (
                "postgres.acquire_timeout_secs",
                c.postgres.acquire_timeout_secs.to_string(),
            ),
            ("scheduler.enabled", s.enabled.to_string()),
            (
                "scheduler.poll_interval_secs",
                s.poll_interval_secs.to_string(),
            ),
            ("scheduler.batch_size", s.batch_size.to_string()),
            ("scheduler.lease_secs", s.lease_secs.to_string()),
            ("mail.transport", mail_transport.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The README's configuration table, by key: `a.b` / `c` / `d` rows name several keys
    /// of one section with their defaults in the same order.
    fn readme_table() -> Vec<(String, String)> {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .unwrap();
        let section = readme
            .split("## Configuration")
            .nth(1)
            .expect("a Configuration section");
        let mut rows = Vec::new();
        for line in section
            .lines()
            .skip_while(|l| !l.starts_with("| key |"))
            .skip(2)
        {
            if !line.starts_with('|') {
                break;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (keys, default) = (cells[1], cells[2]);
            let keys: Vec<&str> = keys
                .split(['/', ','])
                .map(|k| k.trim().trim_matches('`'))
                .collect();
            let defaults: Vec<&str> = default
                .split(" / ")
                .map(|d| d.trim().trim_matches('`'))
                .collect();
            let prefix = keys[0].rsplit_once('.').map(|(p, _)| p);
            for (i, key) in keys.iter().enumerate() {
                let key = match prefix {
                    Some(p) if i > 0 => format!("{p}.{key}"),
                    _ => (*key).to_string(),
                };
                let value = defaults.get(i).copied().unwrap_or(defaults[0]);
                rows.push((key, value.to_string()));
            }
        }
        rows
    }

    /// The README's configuration table states the defaults of the code: every default is
    /// documented, and every documented default is the code's.
    #[test]
    fn readme_configuration_table_matches_the_defaults() {
        let documented = readme_table();
        // Documented in words rather than as one value.
        let described = [
            "calendar_file",
            "scheduler.digests",
            "mail.host",
            "mail.port",
            "mail.security",
            "mail.username",
            "mail.password",
            "mail.from",
        ];
        for (key, value) in &documented {
            if described.contains(&key.as_str()) {
                continue;
            }
            let code = defaults()
                .into_iter()
                .find(|(k, _)| k == key)
                .unwrap_or_else(|| panic!("README documents `{key}`, which has no default"));
            assert_eq!(&code.1, value, "the README's default of `{key}`");
        }
        for (key, _) in defaults() {
            assert!(
                documented.iter().any(|(k, _)| *k == key),
                "`{key}` is missing from the README's configuration table"
            );
        }
        let digests = &Config::default().scheduler.digests;
        assert!(
            digests.len() == 1 && digests[0].cron == "0 0 9 * * *" && digests[0].working_days_only,
            "the README says: daily 09:00 on working days"
        );
    }
}
