//! A batch of deliveries over one SMTP connection.
//!
//! The outbox dispatcher sends a claimed batch through one [`MailSession`]: over SMTP the
//! messages share a connection (one TCP and TLS handshake, one AUTH, then `MAIL`, `RCPT`,
//! `DATA` per message) for as long as the relay keeps it open. A relay that closes it
//! (a per-connection message limit, an idle timeout, a `421`) costs one fresh connection
//! and the message is tried again on it once; any other failure drops the connection, so
//! that the next message starts clean. An exchange that times out drops its connection
//! too: it may be left mid-command and is never reused.

use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::DEFAULT_MECHANISMS;
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls};
use lettre::transport::smtp::response::Response;

use crate::delivery::{DeliveryError, EmlFolderMailer, Mailer, SmtpMailer};
use crate::message::{OutgoingEmail, build_message, message_id};

/// Deliveries that may share one connection; from [`Mailer::session`].
pub struct MailSession<'m> {
    inner: Inner<'m>,
}

enum Inner<'m> {
    // Boxed: the connection's buffers make it large, and a `.eml` session is a pointer.
    Smtp(Box<SmtpSession<'m>>),
    EmlFolder(&'m EmlFolderMailer),
}

impl<'m> MailSession<'m> {
    pub(crate) fn new(mailer: &'m Mailer) -> Self {
        let inner = match mailer {
            Mailer::Smtp(smtp) => Inner::Smtp(Box::new(SmtpSession::new(smtp))),
            Mailer::EmlFolder(folder) => Inner::EmlFolder(folder),
        };
        Self { inner }
    }

    /// Deliver one message, over the session's connection when it has one.
    pub async fn send(&mut self, email: &OutgoingEmail) -> Result<(), DeliveryError> {
        match &mut self.inner {
            Inner::Smtp(smtp) => smtp.send(email).await,
            Inner::EmlFolder(folder) => folder.send(email).await,
        }
    }

    /// SMTP connections opened so far (0 for a `.eml` folder).
    pub fn connections(&self) -> u32 {
        match &self.inner {
            Inner::Smtp(smtp) => smtp.connections,
            Inner::EmlFolder(_) => 0,
        }
    }

    /// Say goodbye to the relay (`QUIT`). Dropping the session instead closes the
    /// connection without it.
    pub async fn close(self) {
        if let Inner::Smtp(smtp) = self.inner {
            (*smtp).close().await;
        }
    }
}

pub(crate) struct SmtpSession<'m> {
    mailer: &'m SmtpMailer,
    conn: Option<AsyncSmtpConnection>,
    connections: u32,
}

impl<'m> SmtpSession<'m> {
    pub(crate) fn new(mailer: &'m SmtpMailer) -> Self {
        Self {
            mailer,
            conn: None,
            connections: 0,
        }
    }

    pub(crate) async fn send(&mut self, email: &OutgoingEmail) -> Result<(), DeliveryError> {
        let message = build_message(&self.mailer.from, email)?;
        let envelope = message.envelope().clone();
        let bytes = message.formatted();
        let id = message_id(&email.idempotency_key);
        let reused = self.conn.is_some();
        let mut outcome = self.exchange(&envelope, &bytes).await;
        if reused && matches!(&outcome, Err(Failed::Smtp(err)) if relay_closed(err)) {
            // The relay ended the connection we kept (a limit of messages per
            // connection, an idle timeout): once more on a fresh one.
            tracing::debug!(message_id = %id, server = %self.mailer.server, "SMTP connection closed by the relay; reconnecting");
            outcome = self.exchange(&envelope, &bytes).await;
        }
        match outcome {
            Ok(response) => {
                tracing::info!(
                    message_id = %id,
                    server = %self.mailer.server,
                    recipients = email.to.len() + email.cc.len(),
                    reply = %response.code(),
                    "email delivered over SMTP"
                );
                Ok(())
            }
            Err(failed) => {
                let err = match failed {
                    Failed::Smtp(err) => DeliveryError::from(err),
                    Failed::TimedOut => DeliveryError::Transient {
                        code: None,
                        reason: format!(
                            "no complete SMTP exchange within {:?}",
                            self.mailer.timeout
                        ),
                    },
                };
                tracing::warn!(message_id = %id, server = %self.mailer.server, error = %err, "email not delivered");
                Err(err)
            }
        }
    }

    /// One message under the configured deadline, connecting first when needed. The
    /// connection is kept only when the exchange succeeded.
    async fn exchange(&mut self, envelope: &Envelope, bytes: &[u8]) -> Result<Response, Failed> {
        let timeout = self.mailer.timeout;
        match tokio::time::timeout(timeout, self.exchange_unbounded(envelope, bytes)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => {
                // lettre has sent QUIT and closed it already when the reply was an error.
                self.conn = None;
                Err(Failed::Smtp(err))
            }
            Err(_) => {
                // Cancelled mid-command: never to be reused.
                self.conn = None;
                Err(Failed::TimedOut)
            }
        }
    }

    async fn exchange_unbounded(
        &mut self,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<Response, SmtpError> {
        if self
            .conn
            .as_ref()
            .is_some_and(AsyncSmtpConnection::has_broken)
        {
            self.conn = None;
        }
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let conn = self.connect().await?;
                self.connections += 1;
                self.conn.insert(conn)
            }
        };
        conn.send(envelope, bytes).await
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        let m = self.mailer;
        let wrapper = match &m.tls {
            Tls::Wrapper(parameters) => Some(parameters.clone()),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (m.host.as_str(), m.port),
            Some(m.timeout),
            &m.hello_name,
            wrapper,
            None,
        )
        .await?;
        if let Tls::Required(parameters) = &m.tls {
            conn.starttls(parameters.clone(), &m.hello_name).await?;
        }
        if let Some(credentials) = &m.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(conn)
    }

    pub(crate) async fn close(mut self) {
        if let Some(mut conn) = self.conn.take() {
            // Best effort, bounded: the messages are delivered already.
            let _ = tokio::time::timeout(self.mailer.timeout, conn.quit()).await;
        }
    }
}

/// Why an exchange did not complete.
enum Failed {
    Smtp(SmtpError),
    TimedOut,
}

/// The relay closed the connection under us: no reply at all (the socket was closed) or
/// `421` ("closing transmission channel").
fn relay_closed(err: &SmtpError) -> bool {
    match err.status() {
        Some(code) => u16::from(code) == 421,
        None => !err.is_client() && !err.is_timeout(),
    }
}
