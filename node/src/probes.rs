//! The DaemonSet probes: `-felix-ready`/`-felix-live` ask felix's health endpoint,
//! `-bird-ready`/`-bird-live` ask bgpd's status socket. Each check returns why it fails.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use bgpd::status::protocol::{self, Request};

/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// felix's health endpoint from `FELIX_HEALTHHOST`/`FELIX_HEALTHPORT` (localhost:9099).
pub fn felix_health_address() -> (String, u16) {
    let host = std::env::var("FELIX_HEALTHHOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let port = std::env::var("FELIX_HEALTHPORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9099);
    (host, port)
}

/// `GET path` on felix's health endpoint: `Ok` when it answers 200.
pub fn felix_check(path: &str) -> Result<(), String> {
    let (host, port) = felix_health_address();
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("felix health {host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("felix health {host}:{port}: no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
        .map_err(|e| format!("felix is not answering on {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(PROBE_TIMEOUT));
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("felix health {addr}: {e}"))?;
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    let status = body.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        let detail = body.split("\r\n\r\n").nth(1).unwrap_or("").trim();
        Err(format!("felix {path}: {status} {detail}"))
    }
}

/// bgpd is ready when every configured session is Established.
pub fn bird_ready(socket: &Path) -> Result<(), String> {
    let r = protocol::query(socket, &Request::Neighbors).map_err(|e| chain(&e))?;
    let down: Vec<String> = r
        .neighbors
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.state != "Established")
        .map(|n| format!("{} ({})", n.address, n.state))
        .collect();
    if down.is_empty() {
        Ok(())
    } else {
        Err(format!("BGP not established with {}", down.join(", ")))
    }
}

/// bgpd is live when its status socket answers.
pub fn bird_live(socket: &Path) -> Result<(), String> {
    protocol::query(socket, &Request::Status)
        .map(|_| ())
        .map_err(|e| chain(&e))
}

fn chain(e: &dyn std::error::Error) -> String {
    crate::run::error_chain(e)
}
