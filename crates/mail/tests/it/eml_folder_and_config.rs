//! The `.eml` folder mailer (the default without an SMTP server) and the configuration.

use crate::common;

use common::{lf, reminder_email};
use grantflow_mail::{
    DeliveryError, EmlFolderConfig, Lang, MailConfig, Mailer, SmtpSecurity, message_id,
};
use mail_parser::{MessageParser, MimeHeaders};
use secrecy::ExposeSecret;

fn eml_mailer(dir: &std::path::Path) -> Mailer {
    Mailer::from_config(&MailConfig::EmlFolder(EmlFolderConfig {
        dir: dir.to_path_buf(),
        from: Default::default(),
    }))
    .unwrap()
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_eml_folder_gets_one_parseable_file_named_after_the_message_id() {
    let root = tempfile::tempdir().unwrap();
    // The folder does not exist yet: the mailer creates it.
    let dir = root.path().join("outbox-eml");
    let email = reminder_email(
        "reminder:GD-2024-0042:formal_check.correction:3d",
        Lang::ZhCn,
    );

    eml_mailer(&dir).send(&email).await.unwrap();

    let id = message_id(&email.idempotency_key);
    let expected_name = format!("{}.eml", id.trim_matches(['<', '>']));
    assert_eq!(
        files_in(&dir),
        [expected_name.as_str()],
        "no temporary file is left"
    );
    let raw = std::fs::read(dir.join(&expected_name)).unwrap();
    let parsed = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(parsed.subject(), Some(email.content.subject.as_str()));
    assert_eq!(parsed.message_id().map(|id| format!("<{id}>")), Some(id));
    assert_eq!(
        parsed.to().unwrap().first().unwrap().name.as_deref(),
        Some("张三")
    );
    assert_eq!(lf(&parsed.body_text(0).unwrap()), email.content.text);
    assert_eq!(lf(&parsed.body_html(0).unwrap()), email.content.html);
    let calendar = parsed
        .attachments()
        .find(|part| part.content_type().and_then(|ct| ct.subtype()) == Some("calendar"))
        .expect("the .ics attachment");
    assert_eq!(calendar.attachment_name(), Some("deadline.ics"));
    let ics = calendar.text_contents().unwrap();
    assert!(ics.contains(&format!("UID:{}", email.calendar.as_ref().unwrap().uid())));
}

#[tokio::test]
async fn resending_an_outbox_entry_replaces_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = eml_mailer(dir.path());
    let email = reminder_email("digest:zhangsan:2024-06-03", Lang::En);
    mailer.send(&email).await.unwrap();
    mailer.send(&email).await.unwrap();
    mailer
        .send(&reminder_email("digest:lisi:2024-06-03", Lang::En))
        .await
        .unwrap();
    assert_eq!(files_in(dir.path()).len(), 2);
}

#[tokio::test]
async fn an_unwritable_folder_is_a_transient_failure() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the folder should be.
    let blocked = dir.path().join("not-a-folder");
    std::fs::write(&blocked, b"").unwrap();
    let err = eml_mailer(&blocked)
        .send(&reminder_email("reminder:blocked", Lang::ZhCn))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Transient { code: None, .. }),
        "{err:?}"
    );
}

const SMTP_TOML: &str = r#"
transport = "smtp"
host = "smtp.example.gov.cn"
security = "starttls"
username = "grantflow"
password = "hunter2-very-secret"
from = { name = "广东省知识产权项目管理系统", address = "noreply@example.gov.cn" }
"#;

#[test]
fn smtp_configuration_parses_with_defaults_and_never_shows_the_password() {
    let config: MailConfig = toml::from_str(SMTP_TOML).unwrap();
    let MailConfig::Smtp(smtp) = &config else {
        panic!("expected SMTP: {config:?}");
    };
    assert_eq!(smtp.security, SmtpSecurity::Starttls);
    assert_eq!(smtp.effective_port(), 587);
    assert_eq!(smtp.timeout_secs, 60);
    assert_eq!(smtp.hello_name, None);
    assert_eq!(
        smtp.password.as_ref().map(ExposeSecret::expose_secret),
        Some("hunter2-very-secret")
    );
    assert_eq!(config.sender().address, "noreply@example.gov.cn");

    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
}

#[tokio::test]
async fn the_smtp_mailer_does_not_show_the_password_either() {
    let config: MailConfig = toml::from_str(SMTP_TOML).unwrap();
    let mailer = Mailer::from_config(&config).unwrap();
    let debug = format!("{mailer:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("smtp.example.gov.cn:587"), "{debug}");
}

#[test]
fn ports_default_by_security() {
    for (security, port) in [("none", 25), ("starttls", 587), ("tls", 465)] {
        let config: MailConfig = toml::from_str(&format!(
            "transport = \"smtp\"\nhost = \"h\"\nsecurity = \"{security}\"\n\
             from = {{ name = \"n\", address = \"a@b.c\" }}\n"
        ))
        .unwrap();
        let MailConfig::Smtp(smtp) = config else {
            unreachable!()
        };
        assert_eq!(smtp.effective_port(), port, "{security}");
    }
}

#[test]
fn without_configuration_mail_goes_to_the_outbox_eml_folder() {
    let MailConfig::EmlFolder(folder) = MailConfig::default() else {
        panic!("the default is the .eml folder");
    };
    assert_eq!(folder.dir, std::path::PathBuf::from("outbox-eml"));
    let parsed: MailConfig = toml::from_str("transport = \"eml_folder\"").unwrap();
    assert!(matches!(parsed, MailConfig::EmlFolder(_)));
}

#[test]
fn unknown_keys_and_transports_are_rejected() {
    let misspelt = format!("{SMTP_TOML}timout_secs = 5\n");
    let err = toml::from_str::<MailConfig>(&misspelt).unwrap_err();
    assert!(err.to_string().contains("timout_secs"), "{err}");
    assert!(toml::from_str::<MailConfig>("transport = \"carrier_pigeon\"").is_err());
}

#[test]
fn an_invalid_sender_address_is_a_configuration_error() {
    let config: MailConfig =
        toml::from_str(&SMTP_TOML.replace("noreply@example.gov.cn", "noreply")).unwrap();
    assert!(Mailer::from_config(&config).is_err());
}

#[test]
fn every_mail_key_defaults_on_its_own() {
    // `[mail] dir = …` alone: the transport is the documented default, the .eml folder.
    let MailConfig::EmlFolder(folder) = toml::from_str::<MailConfig>("dir = \"/tmp/eml\"").unwrap()
    else {
        panic!("`dir` alone configures the .eml folder");
    };
    assert_eq!(folder.dir, std::path::PathBuf::from("/tmp/eml"));
    assert_eq!(folder.from.address, "noreply@grantflow.localhost");

    // A sender with only a name keeps the default address.
    let named: MailConfig = toml::from_str("[from]\nname = \"省知识产权局\"\n").unwrap();
    assert_eq!(named.sender().name, "省知识产权局");
    assert_eq!(named.sender().address, "noreply@grantflow.localhost");

    // SMTP needs a host and nothing else: STARTTLS and its port by default.
    let MailConfig::Smtp(smtp) =
        toml::from_str::<MailConfig>("transport = \"smtp\"\nhost = \"relay\"\n").unwrap()
    else {
        panic!("smtp");
    };
    assert_eq!(smtp.security, SmtpSecurity::Starttls);
    assert_eq!(smtp.effective_port(), 587);
    assert_eq!(smtp.timeout_secs, 60);
}

#[test]
fn keys_of_the_other_transport_and_a_missing_host_are_named() {
    let err = toml::from_str::<MailConfig>("transport = \"smtp\"\n").unwrap_err();
    assert!(err.to_string().contains("mail.host"), "{err}");
    let err = toml::from_str::<MailConfig>("host = \"relay\"\n").unwrap_err();
    assert!(err.to_string().contains("mail.host"), "{err}");
    let err = toml::from_str::<MailConfig>("transport = \"smtp\"\nhost = \"h\"\ndir = \"x\"\n")
        .unwrap_err();
    assert!(err.to_string().contains("mail.dir"), "{err}");
    // A secret never appears in the error that names its key.
    let err = toml::from_str::<MailConfig>("password = \"hunter2-secret\"\n").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
