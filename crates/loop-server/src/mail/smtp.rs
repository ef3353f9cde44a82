//! The SMTP client: one relay from the configuration (lettre, rustls).

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, SmtpSecurity};

/// The configured relay, or none (mail then waits in the outbox).
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
}

impl Mailer {
    pub fn from_config(c: &MailConfig) -> Result<Mailer, String> {
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| format!("mail.from {:?}: {e}", c.from))?;
        let Some(host) = &c.host else {
            return Ok(Mailer {
                transport: None,
                from,
            });
        };
        let tls = || -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(host.clone());
            if let Some(path) = &c.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("mail.ca_file {}: {e}", path.display()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("mail.ca_file {}: {e}", path.display()))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| format!("mail TLS: {e}"))
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(c.port())
            .timeout(Some(Duration::from_secs(30)))
            .tls(match c.security {
                SmtpSecurity::Starttls => Tls::Required(tls()?),
                SmtpSecurity::Tls => Tls::Wrapper(tls()?),
                SmtpSecurity::None => Tls::None,
            });
        if let (Some(u), Some(p)) = (&c.username, &c.password) {
            b = b.credentials(Credentials::new(u.clone(), p.expose().to_string()));
        }
        Ok(Mailer {
            transport: Some(b.build()),
            from,
        })
    }

    pub fn configured(&self) -> bool {
        self.transport.is_some()
    }

    /// Sends a plain-text message; with `unsubscribe`, as marketing that carries RFC 8058
    /// one-click unsubscribe headers.
    pub(super) async fn send(
        &self,
        to: &str,
        subject: &str,
        text: String,
        unsubscribe: Option<&str>,
    ) -> Result<(), String> {
        let mut b = self.builder(&[to], subject)?;
        if let Some(url) = unsubscribe {
            b = b
                .raw_header(raw_header("List-Unsubscribe", format!("<{url}>")))
                .raw_header(raw_header(
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        let message = b
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| format!("building the message: {e}"))?;
        self.deliver(message).await
    }

    /// Sends one message with a plain-text and an HTML part to every address of `to`.
    pub async fn send_alternative(
        &self,
        to: &[String],
        subject: &str,
        text: String,
        html: String,
    ) -> Result<(), String> {
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        let message = self
            .builder(&to, subject)?
            .multipart(lettre::message::MultiPart::alternative_plain_html(
                text, html,
            ))
            .map_err(|e| format!("building the message: {e}"))?;
        self.deliver(message).await
    }

    fn builder(
        &self,
        to: &[&str],
        subject: &str,
    ) -> Result<lettre::message::MessageBuilder, String> {
        let mut b = Message::builder().from(self.from.clone()).subject(subject);
        for a in to {
            let mailbox: Mailbox = a.parse().map_err(|e| format!("recipient: {e}"))?;
            b = b.to(mailbox);
        }
        Ok(b)
    }

    async fn deliver(&self, message: Message) -> Result<(), String> {
        let Some(t) = &self.transport else {
            return Err("no mail relay is configured".into());
        };
        t.send(message).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

fn raw_header(name: &'static str, value: String) -> lettre::message::header::HeaderValue {
    lettre::message::header::HeaderValue::new(
        lettre::message::header::HeaderName::new_from_ascii_str(name),
        value,
    )
}
