//! Delivery over real SMTP on loopback (aiosmtpd, through the testkit harness).

use crate::common;

use std::str::FromStr;

use common::{lf, reminder_email};
use grantflow_mail::{
    DeliveryError, Lang, MailConfig, Mailer, SmtpSecurity, message_id,
    testkit::{ReceivedAddress, SmtpTestServer, TestServerOptions, TestTls},
};
use icalendar::{Calendar, CalendarDateTime, Component, DatePerhapsTime};

fn mailer_for(server: &SmtpTestServer) -> Mailer {
    Mailer::from_config(&MailConfig::Smtp(server.smtp_config())).unwrap()
}

fn address(name: Option<&str>, address: &str) -> ReceivedAddress {
    ReceivedAddress {
        name: name.map(str::to_owned),
        address: address.to_owned(),
    }
}

#[tokio::test]
async fn a_reminder_arrives_once_with_its_recipients_subject_message_id_and_calendar() {
    let server = SmtpTestServer::start();
    let email = reminder_email(
        "reminder:GD-2024-0042:formal_check.correction:3d",
        Lang::ZhCn,
    );

    mailer_for(&server).send(&email).await.unwrap();

    let received = server.received();
    assert_eq!(received.len(), 1, "delivered exactly once");
    let message = &received[0];
    assert_eq!(
        message.from,
        address(Some("广东省知识产权项目管理系统"), "noreply@grantflow.test")
    );
    assert_eq!(
        message.to,
        [
            address(Some("张三"), "zhangsan@applicant.example.com"),
            address(None, "office@applicant.example.com"),
        ]
    );
    assert_eq!(
        message.cc,
        [address(
            Some("李四（知识产权促进处）"),
            "lisi@gdipa.example.gov.cn"
        )]
    );
    assert_eq!(message.envelope_from, "noreply@grantflow.test");
    let mut envelope_to = message.envelope_to.clone();
    envelope_to.sort();
    assert_eq!(
        envelope_to,
        [
            "lisi@gdipa.example.gov.cn",
            "office@applicant.example.com",
            "zhangsan@applicant.example.com"
        ]
    );
    assert_eq!(message.subject, email.content.subject);
    assert_eq!(message.message_id, message_id(&email.idempotency_key));
    assert_eq!(
        lf(message.text_body.as_deref().unwrap()),
        email.content.text
    );
    assert_eq!(
        lf(message.html_body.as_deref().unwrap()),
        email.content.html
    );
    // The raw message is 7-bit clean: bodies are encoded, the subject is an encoded word.
    assert!(message.raw.is_ascii());
    assert!(String::from_utf8_lossy(&message.raw).contains("Auto-Submitted: auto-generated"));

    let content_type = message.ics_content_type.as_deref().unwrap();
    assert!(content_type.contains("method=PUBLISH"), "{content_type}");
    let ics = message.ics.as_deref().expect("the .ics attachment");
    assert!(ics.contains("\r\n"), "CRLF line ends survive transport");
    let calendar = Calendar::from_str(ics).unwrap();
    let event = calendar.events().next().expect("one VEVENT");
    let expected = email.calendar.as_ref().unwrap();
    assert_eq!(event.get_uid(), Some(expected.uid().as_str()));
    assert_eq!(
        event.get_start(),
        Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(
            expected.at
        )))
    );
}

#[tokio::test]
async fn a_message_without_calendar_is_multipart_alternative_only() {
    let server = SmtpTestServer::start();
    let mut email = reminder_email("notification:GD-2024-0042:returned", Lang::En);
    email.calendar = None;

    mailer_for(&server).send(&email).await.unwrap();

    let received = server.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].ics.is_none());
    let raw = String::from_utf8_lossy(&received[0].raw).to_string();
    assert!(raw.contains("multipart/alternative"));
    assert!(!raw.contains("multipart/mixed"));
}

#[tokio::test]
async fn two_451_replies_are_transient_and_the_third_attempt_is_delivered_once() {
    let mut server = SmtpTestServer::start();
    server.fail_next(
        2,
        451,
        "Requested action aborted: local error in processing",
    );
    let mailer = mailer_for(&server);
    let email = reminder_email("reminder:GD-2024-0042:acceptance:1d", Lang::ZhCn);

    for attempt in 1..=2 {
        let err = mailer.send(&email).await.unwrap_err();
        assert!(
            matches!(
                err,
                DeliveryError::Transient {
                    code: Some(451),
                    ..
                }
            ),
            "attempt {attempt}: {err:?}"
        );
        assert!(err.is_transient());
    }
    mailer.send(&email).await.unwrap();

    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message_id, message_id(&email.idempotency_key));
}

#[tokio::test]
async fn a_550_reply_is_permanent() {
    let mut server = SmtpTestServer::start();
    server.always_fail(550);
    let mailer = mailer_for(&server);
    let email = reminder_email("reminder:GD-2024-0042:acceptance:7d", Lang::En);

    let err = mailer.send(&email).await.unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Permanent { code: 550, reason } if reason.contains("mailbox unavailable")),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(server.received().is_empty());

    // The server recovers: the same mailer delivers again.
    server.accept_all();
    mailer.send(&email).await.unwrap();
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_stopped_server_is_a_transient_failure_and_after_restart_the_resend_keeps_its_message_id()
{
    let mut server = SmtpTestServer::start();
    let mailer = mailer_for(&server);
    // The mailer works before the server goes down.
    mailer
        .send(&reminder_email("digest:zhangsan:2024-06-02", Lang::ZhCn))
        .await
        .unwrap();

    server.stop();
    let email = reminder_email("digest:zhangsan:2024-06-03", Lang::ZhCn);
    let err = mailer.send(&email).await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::Transient { code: None, .. }),
        "{err:?}"
    );

    server.restart();
    mailer.send(&email).await.unwrap();

    let received = server.received();
    assert_eq!(received.len(), 2, "the spool survives the restart");
    assert_eq!(received[1].message_id, message_id(&email.idempotency_key));
}

#[tokio::test]
async fn sending_the_same_outbox_entry_twice_repeats_its_message_id() {
    let server = SmtpTestServer::start();
    let mailer = mailer_for(&server);
    let email = reminder_email("escalation:GD-2024-0042:midterm", Lang::ZhCn);
    mailer.send(&email).await.unwrap();
    mailer.send(&email).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].message_id, received[1].message_id);
}

#[tokio::test]
async fn credentials_are_sent_with_auth_and_a_wrong_password_is_permanent_without_showing_it() {
    let server = SmtpTestServer::start_with(TestServerOptions {
        auth: Some(("grantflow".into(), "s3cret-Passw0rd".into())),
        ..TestServerOptions::default()
    });
    let email = reminder_email("reminder:auth", Lang::ZhCn);

    mailer_for(&server).send(&email).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].auth_login.as_deref(), Some("grantflow"));

    let mut wrong = server.smtp_config();
    wrong.password = Some("not-the-Passw0rd".into());
    let mailer = Mailer::from_config(&MailConfig::Smtp(wrong)).unwrap();
    let err = mailer.send(&email).await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::Permanent { code: 535, .. }),
        "{err:?}"
    );
    for shown in [format!("{err}"), format!("{err:?}"), format!("{mailer:?}")] {
        assert!(!shown.contains("not-the-Passw0rd"), "{shown}");
    }
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn starttls_and_implicit_tls_deliver_to_a_server_with_a_private_certificate() {
    for tls in [TestTls::Starttls, TestTls::Implicit] {
        let server = SmtpTestServer::start_with(TestServerOptions {
            tls,
            ..TestServerOptions::default()
        });
        let config = server.smtp_config();
        assert_ne!(config.security, SmtpSecurity::None);
        let email = reminder_email("reminder:tls", Lang::En);
        Mailer::from_config(&MailConfig::Smtp(config))
            .unwrap()
            .send(&email)
            .await
            .unwrap_or_else(|err| panic!("{tls:?}: {err}\n{}", server.log()));
        assert_eq!(server.received().len(), 1, "{tls:?}");
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_transient_tls_failure() {
    let server = SmtpTestServer::start_with(TestServerOptions {
        tls: TestTls::Implicit,
        ..TestServerOptions::default()
    });
    let mut config = server.smtp_config();
    config.extra_root_certificates = None;
    let err = Mailer::from_config(&MailConfig::Smtp(config))
        .unwrap()
        .send(&reminder_email("reminder:untrusted", Lang::En))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Transient { code: None, .. }),
        "{err:?}"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn implicit_tls_against_a_plain_server_fails_transiently_and_required_starttls_is_unsendable()
{
    let server = SmtpTestServer::start();
    let email = reminder_email("reminder:misconfigured", Lang::En);

    let mut tls = server.smtp_config();
    tls.security = SmtpSecurity::Tls;
    let err = Mailer::from_config(&MailConfig::Smtp(tls))
        .unwrap()
        .send(&email)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Transient { code: None, .. }),
        "{err:?}"
    );

    // The server offers no STARTTLS: sending in clear text instead would be a downgrade.
    let mut starttls = server.smtp_config();
    starttls.security = SmtpSecurity::Starttls;
    let err = Mailer::from_config(&MailConfig::Smtp(starttls))
        .unwrap()
        .send(&email)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Unsendable { reason } if reason.contains("STARTTLS")),
        "{err:?}"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn an_invalid_recipient_address_is_unsendable_before_connecting() {
    let server = SmtpTestServer::start();
    let mut email = reminder_email("reminder:bad-address", Lang::ZhCn);
    email.to[0].address = "zhangsan at example".into();
    let err = mailer_for(&server).send(&email).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Unsendable { .. }), "{err:?}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_transient_timeout() {
    let mut server = SmtpTestServer::start();
    server.stall();
    let mut config = server.smtp_config();
    config.timeout_secs = 1;
    let started = std::time::Instant::now();
    let err = Mailer::from_config(&MailConfig::Smtp(config))
        .unwrap()
        .send(&reminder_email("reminder:stalled", Lang::ZhCn))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Transient { code: None, reason } if reason.contains("within")),
        "{err:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
