//! `grantflow bench smtp --port P`: messages per second to an SMTP relay, one connection
//! per message (`Mailer::send`) against one connection for the whole batch
//! (`Mailer::session`, what the outbox dispatcher uses), in the same run. A benchmark, not
//! a test: point it at a relay that accepts anything, e.g. the tests' aiosmtpd server
//! (`python3 tests/smtp/smtp_server.py --port P --spool DIR --control DIR/control.json`).

use std::time::Instant;

use grantflow_mail::{
    Lang, MailConfig, Mailer, OutgoingEmail, Recipient, Sender, SmtpConfig, SmtpSecurity, render,
    sample_context,
};

fn email(i: usize) -> anyhow::Result<OutgoingEmail> {
    Ok(OutgoingEmail {
        idempotency_key: format!("bench-smtp:{}:{i}", uuid::Uuid::new_v4().simple()),
        to: vec![Recipient::new("张三", "zhangsan@applicant.example.com")],
        cc: vec![],
        content: render(
            "reminder",
            Lang::ZhCn,
            &sample_context("reminder").ok_or_else(|| anyhow::anyhow!("no sample context"))?,
        )?,
        calendar: None,
    })
}

pub async fn smtp(host: &str, port: u16, messages: usize) -> anyhow::Result<()> {
    let mailer = Mailer::from_config(&MailConfig::Smtp(SmtpConfig {
        host: host.to_string(),
        port: Some(port),
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: Sender {
            name: "grantflow bench".into(),
            address: "bench@grantflow.test".into(),
        },
        timeout_secs: 30,
        hello_name: None,
        extra_root_certificates: None,
    }))?;
    let batch: Vec<OutgoingEmail> = (0..messages).map(email).collect::<Result<_, _>>()?;
    println!("| path | messages | connections | per second |");
    println!("| --- | ---: | ---: | ---: |");
    // Alternate the two paths in blocks, so that both see the relay in the same state.
    let (mut single, mut shared, mut shared_connections) = (0.0, 0.0, 0);
    for block in batch.chunks(100) {
        let start = Instant::now();
        for m in block {
            mailer.send(m).await?;
        }
        single += start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mut session = mailer.session();
        for m in block {
            session.send(m).await?;
        }
        shared_connections += session.connections();
        session.close().await;
        shared += start.elapsed().as_secs_f64();
    }
    println!(
        "| one connection per message | {messages} | {messages} | {:.0} |",
        messages as f64 / single
    );
    println!(
        "| one connection per batch of 100 (outbox dispatcher) | {messages} | {shared_connections} | {:.0} |",
        messages as f64 / shared
    );
    Ok(())
}
