//! Sending one notification: JSON over HTTPS (Slack, Discord, signed webhooks) or an email over SMTP.
//! Every send is bounded by [`SEND_TIMEOUT`]; no redirect is followed.

use super::urls;
use crate::ssr::callback_auth::WebhookSecret;
use crate::ssr::config::Config;
use serde_json::Value;
use std::time::Duration;

/// The longest one send may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// POSTs `body` to `url` (checked again now, and connected to the address it was checked at);
/// signed per Standard Webhooks when `signing` is given. `Err` says why it did not land.
pub async fn post_json(
    config: &Config,
    field: &str,
    url: &str,
    body: &Value,
    signing: Option<(&WebhookSecret, &str)>,
) -> Result<(), String> {
    let checked = urls::check(field, url, config.notify_allow_private_urls).await?;
    let mut client = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("racky-videos-notifier");
    if let Some((host, addr)) = &checked.pinned {
        client = client.resolve(host, *addr);
    }
    let client = client.build().map_err(|e| format!("client: {e}"))?;
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let mut req = client
        .post(checked.url)
        .header("content-type", "application/json");
    if let Some((secret, id)) = signing {
        let ts = chrono::Utc::now().timestamp();
        req = req
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", secret.sign(id, ts, &bytes));
    }
    let resp = req.body(bytes).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("no answer within {} s", SEND_TIMEOUT.as_secs())
        } else if e.is_connect() {
            "could not connect".to_string()
        } else {
            "the request failed".to_string()
        }
    })?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered HTTP {}", status.as_u16()))
    }
}

/// Sends `email` (`{to, subject, text, html}`, as `messages::email` makes it) through `SMTP_URL`.
pub async fn send_email(config: &Config, email: &Value) -> Result<(), String> {
    use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let Some(smtp) = config.smtp_url.as_deref() else {
        return Err("SMTP_URL is not set".into());
    };
    let field = |k: &str| email[k].as_str().unwrap_or_default().to_string();
    let from: Mailbox = config
        .smtp_from
        .parse()
        .map_err(|_| "SMTP_FROM is not a valid address".to_string())?;
    let to: Mailbox = field("to")
        .parse()
        .map_err(|_| format!("{} is not a valid address", field("to")))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(field("subject"))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(field("text")),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(field("html")),
                ),
        )
        .map_err(|e| format!("building the message: {e}"))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp)
        .map_err(|_| "SMTP_URL is not valid".to_string())?
        .timeout(Some(SEND_TIMEOUT))
        .build();
    match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("SMTP: {}", short(&e.to_string()))),
        Err(_) => Err(format!(
            "SMTP: no answer within {} s",
            SEND_TIMEOUT.as_secs()
        )),
    }
}

/// An error's first 200 characters (a server's answer may be long).
fn short(s: &str) -> String {
    s.chars().take(200).collect()
}
