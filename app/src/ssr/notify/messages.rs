//! What each channel is sent, built once when a delivery is made (so a retry sends the same).

use crate::model::webhook::youtube_url;
use crate::model::{AiVideo, Timestamp, VideoStatus};
use serde_json::{json, Value};

/// A finished video with what a message says about it.
#[derive(Clone, Debug)]
pub struct Finished {
    pub video: AiVideo,
    pub product_title: String,
}

impl Finished {
    fn link(&self) -> Option<String> {
        self.video.metadata.video_url.clone().or_else(|| {
            self.video
                .metadata
                .youtube_video_id
                .as_deref()
                .map(youtube_url)
        })
    }

    fn error(&self) -> &str {
        self.video
            .error
            .as_deref()
            .unwrap_or(crate::model::webhook::DEFAULT_FAILURE_ERROR)
    }

    fn completed(&self) -> bool {
        self.video.status == VideoStatus::Completed
    }

    /// One line of text: "Trail shoes: ready, https://…" or "Trail shoes: failed (why)".
    fn line(&self) -> String {
        match (self.completed(), self.link()) {
            (true, Some(l)) => format!("{}: ready, {l}", self.product_title),
            (true, None) => format!("{}: ready", self.product_title),
            (false, _) => format!("{}: failed ({})", self.product_title, self.error()),
        }
    }
}

/// `video.completed` or `video.failed`.
pub fn event_type(status: VideoStatus) -> &'static str {
    if status == VideoStatus::Completed {
        "video.completed"
    } else {
        "video.failed"
    }
}

/// The generic webhook's body (Standard Webhooks; absent values are null).
pub fn webhook(f: &Finished, at: Timestamp) -> Value {
    let v = &f.video;
    json!({
        "type": event_type(v.status),
        "timestamp": at,
        "data": {
            "videoId": v.id,
            "productId": v.product_id,
            "workspaceId": v.workspace_id,
            "status": v.status,
            "videoUrl": v.metadata.video_url,
            "youtubeUrl": v.metadata.youtube_video_id.as_deref().map(youtube_url),
            "imgS3Url": v.metadata.img_s3_url,
            "error": v.error,
        }
    })
}

fn headline(f: &Finished) -> String {
    if f.completed() {
        format!("Video ready: {}", f.product_title)
    } else {
        format!("Video failed: {}", f.product_title)
    }
}

/// Slack's incoming-webhook JSON: `text` (the fallback) and `blocks`.
pub fn slack(f: &Finished) -> Value {
    let detail = match (f.completed(), f.link()) {
        (true, Some(l)) => format!("<{l}|Watch the video>"),
        (true, None) => "The video is ready.".into(),
        (false, _) => format!("Error: {}", f.error()),
    };
    let icon = if f.completed() {
        ":white_check_mark:"
    } else {
        ":x:"
    };
    json!({
        "text": format!("{} ({})", headline(f), f.line()),
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn",
              "text": format!("{icon} *{}*\n{detail}", headline(f)) } },
            { "type": "context", "elements": [ { "type": "mrkdwn",
              "text": format!("video `{}` · product `{}`", f.video.id, f.video.product_id) } ] },
        ],
    })
}

/// Discord's webhook JSON: `content` and `embeds`.
pub fn discord(f: &Finished) -> Value {
    let mut embed = json!({
        "title": headline(f),
        "description": if f.completed() { "The video is ready.".to_string() } else { format!("Error: {}", f.error()) },
        "color": if f.completed() { 0x2e7d32 } else { 0xc62828 },
        "fields": [ { "name": "Video", "value": f.video.id.to_string(), "inline": true },
                    { "name": "Product", "value": f.video.product_id.to_string(), "inline": true } ],
    });
    if let Some(l) = f.link() {
        embed["url"] = json!(l);
    }
    if let Some(img) = &f.video.metadata.img_s3_url {
        embed["thumbnail"] = json!({ "url": img });
    }
    json!({ "content": headline(f), "embeds": [embed] })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The email about a batch (every video of it final): subject, plain text and HTML.
pub fn email(to: &str, videos: &[Finished]) -> Value {
    let ok = videos.iter().filter(|f| f.completed()).count();
    let failed = videos.len() - ok;
    let subject = match videos {
        [one] if one.completed() => format!("Your video for {} is ready", one.product_title),
        [one] => format!("Your video for {} failed", one.product_title),
        _ => format!(
            "Your {} videos are done: {ok} ready, {failed} failed",
            videos.len()
        ),
    };
    let mut text = String::from("Hello,\n\n");
    let mut html = String::from("<p>Hello,</p><ul>");
    for f in videos {
        text.push_str(&format!("- {}\n", f.line()));
        let item = match (f.completed(), f.link()) {
            (true, Some(l)) => format!(
                "<strong>{}</strong>: ready, <a href=\"{}\">watch the video</a>",
                esc(&f.product_title),
                esc(&l)
            ),
            (true, None) => format!("<strong>{}</strong>: ready", esc(&f.product_title)),
            (false, _) => format!(
                "<strong>{}</strong>: failed ({})",
                esc(&f.product_title),
                esc(f.error())
            ),
        };
        html.push_str(&format!("<li>{item}</li>"));
    }
    text.push_str("\nRacky videos\n");
    html.push_str("</ul><p>Racky videos</p>");
    json!({ "to": to, "subject": subject, "text": text, "html": html,
            "videoIds": videos.iter().map(|f| f.video.id).collect::<Vec<_>>() })
}
