//! Sockets for BGP: listeners (one per configured address, IPv6 ones IPv6-only), outbound
//! connections bound to a source address, and the per-neighbour options (TCP MD5, GTSM, TTL).

pub mod sockopt;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::config::TransportOptions;

/// Binds a listening socket.
pub(crate) fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        let s = TcpSocket::new_v6()?;
        sockopt::set_v6_only(&s)?;
        s
    };
    sock.set_reuseaddr(true)?;
    sockopt::set_save_syn(&sock)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

/// Applies the TTL options of a neighbour to a socket: GTSM (TTL 255 out, minimum TTL
/// 256 - hops in) or a plain TTL.
pub(crate) fn apply_ttl(
    sock: &impl std::os::fd::AsRawFd,
    v6: bool,
    opts: &TransportOptions,
) -> io::Result<()> {
    if let Some(hops) = opts.ttl_security {
        sockopt::set_ttl(sock, v6, 255)?;
        sockopt::set_min_ttl(sock, v6, 255u8.saturating_sub(hops).saturating_add(1))?;
    } else if let Some(ttl) = opts.ttl {
        sockopt::set_ttl(sock, v6, ttl)?;
    }
    Ok(())
}

/// For a neighbour with GTSM: refuses an accepted connection whose SYN arrived with a TTL
/// below 256 - hops (the message says why); otherwise applies the TTL options, so nothing sent
/// later with a lower TTL is delivered.
pub(crate) fn check_accepted(
    stream: &TcpStream,
    remote: SocketAddr,
    opts: &TransportOptions,
) -> Result<(), String> {
    let v6 = remote.is_ipv6();
    if let Some(hops) = opts.ttl_security {
        let min = 255u8.saturating_sub(hops).saturating_add(1);
        if let Ok(Some(ttl)) = sockopt::saved_syn_ttl(stream)
            && ttl < min
        {
            return Err(format!(
                "GTSM: the connection from {remote} arrived with TTL {ttl}, below {min} \
                 (ttl-security = {hops}); refused"
            ));
        }
    }
    apply_ttl(stream, v6, opts).map_err(|e| format!("cannot set TTL options: {e}"))
}

/// Opens a connection to `remote` with the neighbour's options, from `local` if given, giving
/// up after `timeout`.
pub(crate) async fn connect(
    remote: SocketAddr,
    local: Option<IpAddr>,
    opts: &TransportOptions,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let v6 = remote.is_ipv6();
    let sock = if v6 {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    if let Some(key) = &opts.password {
        sockopt::set_md5_key(&sock, v6, remote.ip(), Some(key.as_bytes()))?;
    }
    apply_ttl(&sock, v6, opts)?;
    if let Some(l) = local {
        sock.bind(SocketAddr::new(l, 0))?;
    }
    let stream = tokio::time::timeout(timeout, sock.connect(remote))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connection attempt timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}
