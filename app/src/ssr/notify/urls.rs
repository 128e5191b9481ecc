//! Where notifications may be sent: https URLs whose host resolves to public addresses only (no
//! loopback, private, link-local, shared, metadata or reserved ranges), so a workspace's settings
//! cannot make the server call into its own network. `NOTIFY_ALLOW_PRIVATE_URLS` lifts both rules.

use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// A URL that passed the checks, with the address to connect to (pinned, so a second DNS answer
/// cannot point elsewhere) when the rules apply.
#[derive(Clone, Debug)]
pub struct Checked {
    pub url: Url,
    pub pinned: Option<(String, SocketAddr)>,
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local() // 169.254/16: the cloud metadata services live here
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1])) // shared address space (CGNAT)
        || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking
        || o[0] >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254, a metadata address, is one)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
}

pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

/// Checks `raw` as the URL of the settings field `field`; the error names the field.
pub async fn check(field: &str, raw: &str, allow_private: bool) -> Result<Checked, String> {
    let url = Url::parse(raw.trim()).map_err(|_| format!("{field} is not a valid URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(format!("{field} must be an https URL")),
    }
    let Some(host) = url.host_str().map(str::to_string) else {
        return Err(format!("{field} must name a host"));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{field} must not carry a user name or password"));
    }
    if allow_private {
        return Ok(Checked { url, pinned: None });
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::lookup_host((lookup_host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(a)) => a.collect(),
        _ => return Err(format!("{field}: the host {host} cannot be resolved")),
    };
    if addrs.is_empty() || addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(format!(
            "{field} must resolve to public addresses only (not loopback, private, link-local or metadata ones)"
        ));
    }
    Ok(Checked {
        url,
        pinned: Some((lookup_host, addrs[0])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_must_be_https_and_public() {
        let e = check("slackWebhookUrl", "http://hooks.example/x", false)
            .await
            .unwrap_err();
        assert_eq!(e, "slackWebhookUrl must be an https URL");
        let e = check("webhookUrl", "https://127.0.0.1/x", false)
            .await
            .unwrap_err();
        assert!(
            e.starts_with("webhookUrl must resolve to public addresses"),
            "{e}"
        );
        let e = check("webhookUrl", "https://[::1]:8443/x", false)
            .await
            .unwrap_err();
        assert!(
            e.starts_with("webhookUrl must resolve to public addresses"),
            "{e}"
        );
        let e = check("discordWebhookUrl", "not a url", false)
            .await
            .unwrap_err();
        assert_eq!(e, "discordWebhookUrl is not a valid URL");
        let e = check("webhookUrl", "https://u:p@8.8.8.8/x", false)
            .await
            .unwrap_err();
        assert!(e.contains("user name"), "{e}");
        // A public literal passes and is pinned; with the rules lifted, anything http(s) passes.
        let ok = check("webhookUrl", "https://8.8.8.8/hook", false)
            .await
            .unwrap();
        assert_eq!(ok.pinned.unwrap().1, "8.8.8.8:443".parse().unwrap());
        assert!(check("webhookUrl", "http://127.0.0.1:9/x", true)
            .await
            .is_ok());
        assert!(check("webhookUrl", "ftp://127.0.0.1/x", true)
            .await
            .is_err());
    }
}
