//! grantflow-mail: turns an outbox message into an email and delivers it.
//!
//! - [`render`] a template (zh-CN or en) with a JSON context into a [`RenderedEmail`];
//! - optionally attach a [`DeadlineEvent`] (`.ics`);
//! - hand an [`OutgoingEmail`] to a [`Mailer`] built from [`MailConfig`] (SMTP or a `.eml`
//!   folder); a failure is a [`DeliveryError`]: `Transient` ones are retried after
//!   [`next_attempt_delay`], the others go to the dead letters.
//!
//! With the `testkit` feature, [`testkit::SmtpTestServer`] runs a real SMTP server on loopback
//! for tests of this and other crates.

mod config;
mod delivery;
mod ics;
mod message;
mod session;
mod templates;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::{EmlFolderConfig, MailConfig, Sender, SmtpConfig, SmtpSecurity};
pub use delivery::{
    DeliveryError, EmlFolderMailer, MailConfigError, Mailer, SmtpMailer, next_attempt_delay,
    with_jitter,
};
pub use ics::DeadlineEvent;
pub use message::{OutgoingEmail, Recipient, build_message, message_id};
pub use session::MailSession;
pub use templates::{
    Lang, RenderError, RenderedEmail, TEMPLATE_NAMES, render, sample_context, template_variables,
};
