//! The status socket protocol: newline-delimited JSON over a Unix stream socket. A client writes
//! one [`Request`] per line and reads one [`Response`] per line, in order, on the same
//! connection (as many as it likes). See `bgpd/README.md` for examples.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{NeighborStatus, RouteStatus, Status};
use crate::daemon::ReconfigureReport;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line accepted, octets.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

/// A request: `{"request": "<kind>", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// The daemon summary with every neighbour.
    Status,
    /// Neighbours only.
    Neighbors,
    /// Loc-RIB routes: all, or the one for `prefix`.
    Routes {
        /// Only this prefix.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<IpNet>,
    },
    /// Re-read the configuration file and apply it (as SIGHUP does).
    Reload,
    /// Take a neighbour down with Cease/Administrative Shutdown and keep it down.
    AdminDown {
        /// The neighbour.
        address: IpAddr,
        /// Shutdown communication (RFC 8203).
        #[serde(default)]
        message: String,
    },
    /// Bring an administratively down neighbour back.
    AdminUp {
        /// The neighbour.
        address: IpAddr,
    },
}

/// A response: `ok` and the member named after the request, or `error`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version.
    pub version: u32,
    /// The request succeeded.
    pub ok: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// For `neighbors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbors: Option<Vec<NeighborStatus>>,
    /// For `routes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteStatus>>,
    /// For `reload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<ReconfigureReport>,
}

impl Response {
    /// A success with nothing attached.
    pub fn ok() -> Response {
        Response {
            version: PROTOCOL_VERSION,
            ok: true,
            ..Response::default()
        }
    }

    /// A failure.
    pub fn error(message: impl Into<String>) -> Response {
        Response {
            version: PROTOCOL_VERSION,
            ok: false,
            error: Some(message.into()),
            ..Response::default()
        }
    }
}

/// Talking to the status socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, writing or reading failed.
    #[error("status socket {path}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The reply was not a response.
    #[error("status socket {path} sent something that is not a response")]
    BadResponse {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The daemon refused the request.
    #[error("bgpd: {0}")]
    Refused(String),
}

/// Sends one request and waits for its response (blocking; for CLIs such as `bgpd show` and
/// `calicoctl node status`). A response with `ok: false` becomes [`ClientError::Refused`].
pub fn query(path: &Path, request: &Request) -> Result<Response, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(io)?;
    let mut line = serde_json::to_vec(request).map_err(|source| ClientError::BadResponse {
        path: path.to_path_buf(),
        source,
    })?;
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader.read_line(&mut reply).map_err(io)?;
    let response: Response =
        serde_json::from_str(&reply).map_err(|source| ClientError::BadResponse {
            path: path.to_path_buf(),
            source,
        })?;
    if !response.ok {
        return Err(ClientError::Refused(
            response.error.unwrap_or_else(|| "request failed".into()),
        ));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_by_kind() {
        let r: Request =
            serde_json::from_str(r#"{"request":"routes","prefix":"10.0.0.0/24"}"#).unwrap();
        assert_eq!(
            r,
            Request::Routes {
                prefix: Some("10.0.0.0/24".parse().unwrap())
            }
        );
        let r: Request = serde_json::from_str(r#"{"request":"neighbors"}"#).unwrap();
        assert_eq!(r, Request::Neighbors);
        assert!(serde_json::from_str::<Request>(r#"{"request":"nope"}"#).is_err());
    }

    #[test]
    fn an_error_response_omits_the_empty_members() {
        let text = serde_json::to_string(&Response::error("no such peer")).unwrap();
        assert_eq!(text, r#"{"version":1,"ok":false,"error":"no such peer"}"#);
    }
}
