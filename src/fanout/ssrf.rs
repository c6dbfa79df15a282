//! The SSRF guard for subscriber URLs: no loopback, private, link-local, CGNAT or
//! cloud-metadata targets, in any spelling.
//!
//! Hosts are parsed by the WHATWG URL rules, which is what turns
//! `http://2130706433/`, `http://0x7f.1/` and `http://0177.0.0.1/` into
//! `127.0.0.1` before any check runs: on wasm by the runtime's own `URL` (the one
//! `fetch` will use, and no parser tables in the bundle), natively by the `url`
//! crate, which implements the same standard. Names are not resolved (a Worker
//! cannot see what DNS answers at fetch time); `localhost` and its subdomains, and
//! well-known metadata names, are refused by name.

use std::net::{Ipv4Addr, Ipv6Addr};

/// What the guard needs from a URL, as the WHATWG parser sees it.
struct Parsed {
    /// Without the trailing `:`.
    scheme: String,
    has_credentials: bool,
    /// The serialized host: a domain, dotted IPv4, or `[IPv6]`.
    host: String,
}

#[cfg(target_arch = "wasm32")]
fn parse(url: &str) -> Result<Parsed, String> {
    let parsed = web_sys::Url::new(url).map_err(|e| crate::platform::js_error_message(&e))?;
    Ok(Parsed {
        scheme: parsed.protocol().trim_end_matches(':').to_owned(),
        has_credentials: !parsed.username().is_empty() || !parsed.password().is_empty(),
        host: parsed.hostname(),
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn parse(url: &str) -> Result<Parsed, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    Ok(Parsed {
        scheme: parsed.scheme().to_owned(),
        has_credentials: !parsed.username().is_empty() || parsed.password().is_some(),
        host: parsed.host_str().unwrap_or("").to_owned(),
    })
}

enum Host {
    Domain(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

fn classify_host(host: &str) -> Host {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if let Ok(ip) = inner.parse() {
            return Host::V6(ip);
        }
    }
    match host.parse() {
        Ok(ip) => Host::V4(ip),
        Err(_) => Host::Domain(host.to_ascii_lowercase()),
    }
}

use crate::error::{Error, ErrorKind};

/// Which webhook targets are allowed.
#[derive(Clone, Debug)]
pub struct SsrfPolicy {
    require_https: bool,
    allowed_hosts: Vec<String>,
}

impl SsrfPolicy {
    /// Production: `https` only, no internal targets, no exceptions.
    pub fn production() -> Self {
        Self {
            require_https: true,
            allowed_hosts: Vec::new(),
        }
    }

    /// Local development: `http` allowed, and only the hosts listed (e.g.
    /// `127.0.0.1`) exempt from the address checks.
    pub fn development(allowed_hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            require_https: false,
            allowed_hosts: allowed_hosts
                .into_iter()
                .map(|h| h.into().to_ascii_lowercase())
                .collect(),
        }
    }

    /// The policy a setting asks for: `""` (or only commas and spaces) is
    /// [`production`](Self::production); `"127.0.0.1, localhost"` is
    /// [`development`](Self::development) with those hosts.
    pub fn from_allow_list(hosts: &str) -> Self {
        let hosts: Vec<&str> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        if hosts.is_empty() {
            Self::production()
        } else {
            Self::development(hosts)
        }
    }

    /// Checks `url`. Every refusal is a 422 problem that says why.
    pub fn check(&self, url: &str) -> Result<(), Error> {
        let parsed = parse(url).map_err(|e| refuse(format!("{url:?} is not a valid URL: {e}")))?;
        match parsed.scheme.as_str() {
            "https" => {}
            "http" if !self.require_https => {}
            "http" => return Err(refuse("webhook URLs must use https".into())),
            other => {
                let allowed = if self.require_https {
                    "https"
                } else {
                    "https or http"
                };
                return Err(refuse(format!(
                    "scheme `{other}` is not allowed; use {allowed}"
                )));
            }
        }
        if parsed.has_credentials {
            return Err(refuse("webhook URLs must not carry credentials".into()));
        }
        if parsed.host.is_empty() {
            return Err(refuse("webhook URLs need a host".into()));
        }
        let host = classify_host(&parsed.host);
        let host_text = match &host {
            Host::Domain(d) => d.clone(),
            Host::V4(ip) => ip.to_string(),
            Host::V6(ip) => ip.to_string(),
        };
        if self.allowed_hosts.contains(&host_text) {
            return Ok(());
        }
        match host {
            Host::Domain(domain) => check_name(&domain),
            Host::V4(ip) => check_v4(ip),
            Host::V6(ip) => check_v6(ip),
        }
    }
}

fn refuse(detail: String) -> Error {
    Error::new(ErrorKind::UnsafeUrl, detail).with_member("field", "url")
}

fn check_name(domain: &str) -> Result<(), Error> {
    let domain = domain.trim_end_matches('.');
    let internal = domain == "localhost"
        || domain.ends_with(".localhost")
        || domain == "metadata.google.internal"
        || domain == "metadata"
        || domain.ends_with(".internal")
        || domain.ends_with(".local");
    if internal {
        return Err(refuse(format!("host `{domain}` names an internal service")));
    }
    Ok(())
}

/// Why an IPv4 address is off limits, if it is.
pub fn blocked_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        // 169.254.0.0/16, home of 169.254.169.254, the cloud metadata service.
        Some("link-local or metadata")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT (100.64.0.0/10)")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified (0.0.0.0/8)")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("broadcast, multicast or reserved")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("IETF protocol assignments (192.0.0.0/24)")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking (198.18.0.0/15)")
    } else {
        None
    }
}

fn check_v4(ip: Ipv4Addr) -> Result<(), Error> {
    match blocked_v4(ip) {
        Some(why) => Err(refuse(format!("{ip} is a {why} address"))),
        None => Ok(()),
    }
}

fn check_v6(ip: Ipv6Addr) -> Result<(), Error> {
    // IPv4 smuggled inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d)
    // and NAT64 (64:ff9b::a.b.c.d) all reach the IPv4 address.
    let segments = ip.segments();
    let embedded = if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || (segments[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified())
    {
        let o = ip.octets();
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else {
        None
    };
    if let Some(v4) = embedded {
        return check_v4(v4).map_err(|_| {
            refuse(format!(
                "{ip} embeds {v4}, a {} address",
                blocked_v4(v4).unwrap_or("blocked")
            ))
        });
    }
    let why = if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some("unique local (fc00::/7)")
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Some("link-local (fe80::/10)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    };
    match why {
        Some(why) => Err(refuse(format!("{ip} is a {why} address"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn refused(policy: &SsrfPolicy, url: &str) -> String {
        match policy.check(url) {
            Ok(()) => panic!("{url} should be refused"),
            Err(err) => {
                assert_eq!(err.status().as_u16(), 422, "{url}");
                err.detail().to_owned()
            }
        }
    }

    #[test]
    fn every_spelling_of_an_internal_address_is_refused() {
        let policy = SsrfPolicy::production();
        for url in [
            // loopback, in decimal, hex, octal, short and mixed forms
            "https://127.0.0.1/hook",
            "https://2130706433/hook",
            "https://0x7f000001/hook",
            "https://0x7f.0.0.1/hook",
            "https://0177.0.0.1/hook",
            "https://127.1/hook",
            "https://0/hook",
            "https://[::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://[::ffff:7f00:1]/hook",
            "https://[::127.0.0.1]/hook",
            "https://[64:ff9b::127.0.0.1]/hook",
            // private
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://[::ffff:10.1.2.3]/",
            "https://[fd00::1]/",
            // link-local and metadata
            "https://169.254.169.254/latest/meta-data/",
            "https://0xa9fea9fe/",
            "https://[fe80::1]/",
            "https://[::ffff:169.254.169.254]/",
            // CGNAT
            "https://100.64.0.1/",
            "https://100.127.255.254/",
            // names
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
            "https://metadata.google.internal/",
            "https://db.internal/",
            // reserved and broadcast
            "https://255.255.255.255/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
        ] {
            refused(&policy, url);
        }
    }

    #[test]
    fn production_requires_https_and_no_credentials() {
        let policy = SsrfPolicy::production();
        assert!(refused(&policy, "http://example.com/hook").contains("https"));
        assert!(refused(&policy, "ftp://example.com/").contains("scheme"));
        assert!(refused(&policy, "https://user:pw@example.com/").contains("credentials"));
        assert!(refused(&policy, "not a url").contains("valid URL"));
        assert!(policy.check("https://hooks.example.com/in?x=1").is_ok());
        assert!(policy.check("https://93.184.215.14/").is_ok());
        assert!(policy.check("https://[2606:4700::1111]/").is_ok());
        assert!(policy.check("https://100.128.0.1/").is_ok());
    }

    #[test]
    fn the_dev_allowlist_is_the_only_way_in() {
        let dev = SsrfPolicy::development(["127.0.0.1"]);
        assert!(dev.check("http://127.0.0.1:9000/hook").is_ok());
        // The same address spelled differently is the same host after parsing.
        assert!(dev.check("http://2130706433:9000/hook").is_ok());
        // Other internal targets stay refused.
        refused(&dev, "http://localhost:9000/hook");
        refused(&dev, "http://169.254.169.254/");
        refused(&dev, "http://10.0.0.1/");
    }

    #[test]
    fn an_empty_allow_list_setting_is_production() {
        for empty in ["", " , ,", "  "] {
            refused(
                &SsrfPolicy::from_allow_list(empty),
                "http://example.com/hook",
            );
        }
        let dev = SsrfPolicy::from_allow_list(" 127.0.0.1 ,localhost");
        assert!(dev.check("http://127.0.0.1:9000/hook").is_ok());
        assert!(dev.check("http://localhost:9000/hook").is_ok());
        refused(&dev, "http://10.0.0.1/");
    }

    #[test]
    fn a_refused_scheme_names_the_schemes_this_policy_allows() {
        let production = SsrfPolicy::production().check("ftp://example.com/x");
        let detail = production.unwrap_err().detail().to_owned();
        assert!(detail.ends_with("use https"), "{detail}");
        let development = SsrfPolicy::development(["127.0.0.1"]).check("ftp://example.com/x");
        let detail = development.unwrap_err().detail().to_owned();
        assert!(detail.ends_with("use https or http"), "{detail}");
    }
}
