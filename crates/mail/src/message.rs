//! Turning an outbox entry into a MIME message.

use lettre::message::{
    Attachment, Mailbox, Message, MultiPart, SinglePart,
    header::{ContentType, Header, HeaderName, HeaderValue},
};
use sha2::{Digest, Sha256};

use crate::{
    config::Sender, delivery::DeliveryError, ics::DeadlineEvent, templates::RenderedEmail,
};

/// One email as the outbox hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The outbox idempotency key. The `Message-ID` is derived from it, so every attempt to
    /// send the same outbox entry (also after a crash) carries the same `Message-ID`.
    pub idempotency_key: String,
    pub to: Vec<Recipient>,
    pub cc: Vec<Recipient>,
    pub content: RenderedEmail,
    /// Attached as `deadline.ics` (`text/calendar; method=PUBLISH`) when present.
    pub calendar: Option<DeadlineEvent>,
}

/// An addressee, with the display name shown by mail clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub name: Option<String>,
    pub address: String,
}

impl Recipient {
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            address: address.into(),
        }
    }

    pub fn address_only(address: impl Into<String>) -> Self {
        Self {
            name: None,
            address: address.into(),
        }
    }
}

/// `<32 hex digits of SHA-256(idempotency key)@grantflow>`: the same key gives the same id.
pub fn message_id(idempotency_key: &str) -> String {
    let digest = hex::encode(Sha256::digest(idempotency_key.as_bytes()));
    format!("<{}@grantflow>", &digest[..32])
}

/// `Auto-Submitted: auto-generated` (RFC 3834): tells vacation responders not to answer.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// Builds the MIME message: `multipart/alternative` (text, HTML), inside `multipart/mixed`
/// with the calendar attachment when there is one.
pub fn build_message(from: &Sender, email: &OutgoingEmail) -> Result<Message, DeliveryError> {
    if email.to.is_empty() {
        return Err(DeliveryError::Unsendable {
            reason: "the message has no recipient".to_owned(),
        });
    }
    let mut builder = Message::builder()
        .message_id(Some(message_id(&email.idempotency_key)))
        .from(mailbox(Some(&from.name), &from.address)?)
        .subject(email.content.subject.clone())
        .header(AutoSubmitted);
    for recipient in &email.to {
        builder = builder.to(mailbox(recipient.name.as_deref(), &recipient.address)?);
    }
    for recipient in &email.cc {
        builder = builder.cc(mailbox(recipient.name.as_deref(), &recipient.address)?);
    }

    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::plain(email.content.text.clone()))
        .singlepart(SinglePart::html(email.content.html.clone()));
    let body = match &email.calendar {
        None => alternative,
        Some(event) => {
            let calendar_type = ContentType::parse("text/calendar; charset=utf-8; method=PUBLISH")
                .map_err(|err| DeliveryError::Unsendable {
                    reason: format!("calendar content type: {err}"),
                })?;
            MultiPart::mixed().multipart(alternative).singlepart(
                Attachment::new("deadline.ics".to_owned()).body(event.to_ics(), calendar_type),
            )
        }
    };
    builder
        .multipart(body)
        .map_err(|err| DeliveryError::Unsendable {
            reason: format!("building the message: {err}"),
        })
}

fn mailbox(name: Option<&str>, address: &str) -> Result<Mailbox, DeliveryError> {
    let address = address.parse().map_err(|err| DeliveryError::Unsendable {
        reason: format!("invalid email address {address:?}: {err}"),
    })?;
    Ok(Mailbox::new(name.map(str::to_owned), address))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            idempotency_key: "reminder:GD-2024-0042:formal_check.correction:3d".into(),
            to: vec![Recipient::new("张三", "zhangsan@example.com")],
            cc: vec![],
            content: RenderedEmail {
                subject: "【截止提醒】测试".into(),
                text: "正文\n".into(),
                html: "<p>正文</p>".into(),
            },
            calendar: None,
        }
    }

    #[test]
    fn message_id_is_a_deterministic_function_of_the_idempotency_key() {
        let id = message_id("reminder:1");
        assert_eq!(id, message_id("reminder:1"));
        assert_ne!(id, message_id("reminder:2"));
        assert!(id.starts_with('<') && id.ends_with("@grantflow>"));
        assert_eq!(id.len(), "<".len() + 32 + "@grantflow>".len());
    }

    #[test]
    fn the_built_message_carries_the_derived_message_id_and_auto_submitted() {
        let formatted = String::from_utf8(
            build_message(&Sender::default(), &email())
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(
            formatted.contains(&format!(
                "Message-ID: {}\r\n",
                message_id(&email().idempotency_key)
            )),
            "{formatted}"
        );
        assert!(formatted.contains("Auto-Submitted: auto-generated\r\n"));
        assert!(formatted.contains("multipart/alternative"));
        assert!(!formatted.contains("multipart/mixed"));
    }

    #[test]
    fn a_bad_address_or_no_recipient_is_unsendable() {
        let mut bad = email();
        bad.to = vec![Recipient::address_only("not an address")];
        assert!(matches!(
            build_message(&Sender::default(), &bad),
            Err(DeliveryError::Unsendable { reason }) if reason.contains("not an address")
        ));
        let mut nobody = email();
        nobody.to.clear();
        assert!(matches!(
            build_message(&Sender::default(), &nobody),
            Err(DeliveryError::Unsendable { .. })
        ));
    }
}
