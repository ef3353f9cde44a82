//! The SMTP client: one relay from the configuration (lettre, rustls).

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, SmtpSecurity};

/// Why a message was not sent: the relay's answer, or what failed before it answered.
#[derive(Debug)]
pub struct Unsent {
    pub message: String,
    pub answer: Answer,
}

/// What the relay said to a message it did not take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The recipient refused for good: a 5xx reply whose enhanced status code (RFC 3463)
    /// is about the recipient's address or mailbox (5.1.x but the sender's 5.1.7 and
    /// 5.1.8, or 5.2.x), such as an unknown mailbox. Trying again cannot help.
    Refused,
    /// A refusal for now (a 4xx reply, such as greylisting): another try may pass.
    Later,
    /// No answer, or one not about the recipient: the connection, TLS or sign-in failed,
    /// the relay stopped answering, or refused the sender, this server or the message (a
    /// 5xx without such a code). The relay's setup may be at fault: tried again.
    None,
}

impl Answer {
    /// What a failed send's error says, from lettre's reading of the reply and its text.
    pub fn of(permanent: bool, transient: bool, message: &str) -> Answer {
        let about_the_recipient = message.split_whitespace().any(|w| {
            let mut parts = w.trim_end_matches([',', ';', ':']).split('.');
            let (Some("5"), Some(subject), Some(detail), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return false;
            };
            let detail_ok = !detail.is_empty() && detail.bytes().all(|b| b.is_ascii_digit());
            detail_ok && (subject == "2" || (subject == "1" && !["7", "8"].contains(&detail)))
        });
        if permanent && about_the_recipient {
            Answer::Refused
        } else if transient {
            Answer::Later
        } else {
            Answer::None
        }
    }
}

/// The configured relay, or none (mail then waits in the outbox).
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// A whole send's limit (`mail.timeout_seconds`): lettre's own covers the connection
    /// only, not a relay that accepts it and then never answers.
    timeout: Duration,
}

impl Mailer {
    pub fn from_config(c: &MailConfig) -> Result<Mailer, String> {
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| format!("mail.from {:?}: {e}", c.from))?;
        let timeout = Duration::from_secs(c.timeout_seconds);
        let Some(host) = &c.host else {
            return Ok(Mailer {
                transport: None,
                from,
                timeout,
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
            .timeout(Some(timeout))
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
            timeout,
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
    ) -> Result<(), Unsent> {
        let unsent = |message| Unsent {
            message,
            answer: Answer::None,
        };
        let mut b = self.builder(&[to], subject).map_err(unsent)?;
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
            .map_err(|e| unsent(format!("building the message: {e}")))?;
        self.deliver(message).await
    }

    /// Sends a message with a plain-text and an HTML part to `to`.
    pub async fn send_alternative(
        &self,
        to: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<(), Unsent> {
        let unsent = |message| Unsent {
            message,
            answer: Answer::None,
        };
        let message = self
            .builder(&[to], subject)
            .map_err(unsent)?
            .multipart(lettre::message::MultiPart::alternative_plain_html(
                text, html,
            ))
            .map_err(|e| unsent(format!("building the message: {e}")))?;
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

    async fn deliver(&self, message: Message) -> Result<(), Unsent> {
        let Some(t) = &self.transport else {
            return Err(Unsent {
                message: "no mail relay is configured".into(),
                answer: Answer::None,
            });
        };
        match tokio::time::timeout(self.timeout, t.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                let message = e.to_string();
                let answer = Answer::of(e.is_permanent(), e.is_transient(), &message);
                Err(Unsent { message, answer })
            }
            Err(_) => Err(Unsent {
                message: format!(
                    "the mail relay did not finish within {} s",
                    self.timeout.as_secs()
                ),
                answer: Answer::None,
            }),
        }
    }

    /// The longest one send takes before it fails.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The relay's answer with each of the recipients' addresses (in any case) replaced by its
/// place among them ("recipient 2"): a refusal still says which recipient it was, and no
/// address goes into a delivery's or a message's error or the log, where an erasure would
/// have to find it (a delivery under way when one runs would write it back).
pub fn naming_no_address(answer: &str, recipients: &[String]) -> String {
    let mut out = answer.to_string();
    let mut by_length: Vec<(usize, &String)> = recipients.iter().enumerate().collect();
    // The longer first: an address inside another is not cut out of it.
    by_length.sort_by_key(|(_, a)| std::cmp::Reverse(a.len()));
    for (i, address) in by_length {
        let needle = address.to_ascii_lowercase();
        if needle.is_empty() {
            continue;
        }
        let name = format!("recipient {}", i + 1);
        let mut from = 0;
        // ASCII case folding keeps every byte where it was, so positions carry over.
        while let Some(at) = out.to_ascii_lowercase()[from..].find(&needle) {
            let at = from + at;
            out.replace_range(at..at + needle.len(), &name);
            from = at + name.len();
        }
    }
    out
}

fn raw_header(name: &'static str, value: String) -> lettre::message::header::HeaderValue {
    lettre::message::header::HeaderValue::new(
        lettre::message::header::HeaderName::new_from_ascii_str(name),
        value,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay that takes the connection and then never says a word: the send fails after
    /// `mail.timeout_seconds` instead of waiting for ever (lettre's own limit covers the
    /// connection only), so the outbox and the notifier go on.
    #[tokio::test]
    async fn a_relay_that_never_answers_fails_the_send_in_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(conn);
        });
        let config = MailConfig {
            host: Some("127.0.0.1".into()),
            port: Some(port),
            security: SmtpSecurity::None,
            timeout_seconds: 1,
            ..Default::default()
        };
        let mailer = Mailer::from_config(&config).unwrap();
        let sent = tokio::time::timeout(
            Duration::from_secs(120),
            mailer.send("ana@example.com", "hello", "text".into(), None),
        )
        .await;
        held.abort();
        let err = sent.expect("the send ends by itself").unwrap_err();
        assert!(err.message.contains("did not finish"), "{err:?}");
        assert_eq!(err.answer, Answer::None);
    }

    #[test]
    fn only_a_refusal_of_the_recipient_is_for_good() {
        let cases = [
            (
                "permanent error (550): 5.1.1 <ana@example.com>: no such mailbox",
                Answer::Refused,
            ),
            ("permanent error (552): 5.2.2 mailbox full", Answer::Refused),
            (
                "permanent error (550): 5.1.7 bad sender address",
                Answer::None,
            ),
            (
                "permanent error (535): 5.7.8 Authentication credentials invalid",
                Answer::None,
            ),
            (
                "permanent error (554): 5.7.1 Client host rejected",
                Answer::None,
            ),
            ("permanent error (550): mailbox unavailable", Answer::None),
            ("permanent error (554): 5.1.1x not a code", Answer::None),
        ];
        for (message, answer) in cases {
            assert_eq!(Answer::of(true, false, message), answer, "{message}");
        }
        let greylisted = "transient error (450): 4.2.0 <ana@example.com>: greylisted";
        assert_eq!(Answer::of(false, true, greylisted), Answer::Later);
        assert_eq!(Answer::of(false, false, "connection refused"), Answer::None);
    }

    #[test]
    fn a_relays_answer_names_recipients_by_their_place_not_their_address() {
        let recipients = [
            "a@x.example",
            "Refused.Rosa@erasure.example",
            "ba@x.example",
        ]
        .map(String::from);
        assert_eq!(
            naming_no_address(
                "550 5.1.1 <refused.rosa@ERASURE.example>: Recipient address rejected; \
                 also <ba@x.example>, <a@x.example> and refused.rosa@erasure.example",
                &recipients,
            ),
            "550 5.1.1 <recipient 2>: Recipient address rejected; \
             also <recipient 3>, <recipient 1> and recipient 2"
        );
        assert_eq!(
            naming_no_address("421 try later", &recipients),
            "421 try later"
        );
    }
}
