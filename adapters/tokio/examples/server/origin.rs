//! Which web pages may talk to this server.
//!
//! Browsers send `Origin` on WebSocket handshakes and on every POST, so a page from another
//! site that tries to open a socket here or stall the server names itself. Non-browser clients
//! send no `Origin` and are let in. The server's own origins are fixed from its listening
//! address, never taken from the request's `Host` (a DNS-rebinding page controls `Host`).

use std::net::{IpAddr, SocketAddr};

/// The allowed origins, lower case, as browsers serialise them (`http://host:port`).
#[derive(Debug, Clone)]
pub(crate) struct Origins {
    /// The pages this server serves itself.
    own: Vec<String>,
    /// `--allow-origin` values: allowed to open WebSockets, not to use the stall control.
    extra: Vec<String>,
}

/// Why a request was refused; the text is the 403's body.
pub(crate) type Refusal = String;

impl Origins {
    /// The origins of pages served from `addr`: for a loopback or unspecified address
    /// `http://127.0.0.1:PORT`, `http://localhost:PORT` and `http://[::1]:PORT`; otherwise
    /// `http://IP:PORT`. Port 80 is also allowed without the port, as browsers send it.
    pub(crate) fn new(addr: SocketAddr, extra: &[String]) -> Origins {
        let ip = addr.ip();
        let hosts = if ip.is_loopback() || ip.is_unspecified() {
            vec![
                "127.0.0.1".to_owned(),
                "localhost".to_owned(),
                "[::1]".to_owned(),
            ]
        } else {
            match ip {
                IpAddr::V4(v4) => vec![v4.to_string()],
                IpAddr::V6(v6) => vec![format!("[{v6}]")],
            }
        };
        let port = addr.port();
        let mut own = Vec::new();
        for host in hosts {
            own.push(format!("http://{host}:{port}"));
            if port == 80 {
                own.push(format!("http://{host}"));
            }
        }
        Origins {
            own,
            extra: extra.to_vec(),
        }
    }

    /// May a page from `origin` (the request's `Origin` header, if any) open a WebSocket?
    pub(crate) fn check_websocket(&self, origin: Option<&str>) -> Result<(), Refusal> {
        let Some(origin) = origin else { return Ok(()) };
        let origin = origin.to_ascii_lowercase();
        if self.own.contains(&origin) || self.extra.contains(&origin) {
            return Ok(());
        }
        Err(format!(
            "WebSocket from origin {origin:?} refused: allowed are {} and pages from --allow-origin{}\n",
            self.own.join(", "),
            if self.extra.is_empty() {
                " (none given)".to_owned()
            } else {
                format!(" ({})", self.extra.join(", "))
            }
        ))
    }

    /// May this request stall the server? Only from a page this server served, or a
    /// non-browser client: `Origin`, if sent, must be one of ours, and `Sec-Fetch-Site`, if
    /// sent, must say `same-origin` or `none` (typed into the address bar).
    pub(crate) fn check_same_origin(
        &self,
        origin: Option<&str>,
        fetch_site: Option<&str>,
    ) -> Result<(), Refusal> {
        if let Some(origin) = origin {
            if !self.own.contains(&origin.to_ascii_lowercase()) {
                return Err(format!(
                    "stall control from origin {origin:?} refused: same origin only ({})\n",
                    self.own.join(", ")
                ));
            }
        }
        match fetch_site.map(str::to_ascii_lowercase).as_deref() {
            None | Some("same-origin" | "none") => Ok(()),
            Some(site) => Err(format!(
                "stall control refused: Sec-Fetch-Site is {site:?}, same-origin only\n"
            )),
        }
    }
}

/// Checks an `--allow-origin` value and puts it the way browsers send it (lower case, no `/`).
pub(crate) fn parse_allowed(value: &str) -> Result<String, String> {
    let origin = value.trim_end_matches('/').to_ascii_lowercase();
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', '*', ' ']) => Ok(origin),
        _ => Err(format!(
            "{value:?} is not an origin: expected scheme://host[:port], like http://localhost:8080"
        )),
    }
}
