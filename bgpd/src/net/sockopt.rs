//! Socket options tokio does not expose: TCP MD5 signatures (RFC 2385), TTL, minimum TTL and the
//! saved SYN for GTSM (RFC 5082), and `IPV6_V6ONLY`. Two `unsafe` call sites: [`setsockopt`] and
//! [`getsockopt_bytes`].

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};

/// Length of the kernel's `struct sockaddr_storage`.
const SOCKADDR_STORAGE_LEN: usize = 128;
/// Largest key (`TCP_MD5SIG_MAXKEYLEN`).
const MD5_MAX_KEY_LEN: usize = 80;

/// `struct tcp_md5sig` from `<linux/tcp.h>`.
#[repr(C, align(8))]
struct TcpMd5Sig {
    addr: [u8; SOCKADDR_STORAGE_LEN],
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: i32,
    key: [u8; MD5_MAX_KEY_LEN],
}

/// Sets a socket option whose value is the plain-old-data `value`.
#[allow(unsafe_code)]
fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<T>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `value` is a live, initialized `T` (only `c_int` and the `repr(C)` `TcpMd5Sig`,
    // which have no padding-sensitive invariants) for the whole call, and `len` is exactly its
    // size, so the kernel reads only valid memory; it copies the bytes and keeps no pointer. A
    // bad descriptor or option is reported as an error return, not undefined behaviour.
    let rc = unsafe { libc::setsockopt(fd, level, name, (value as *const T).cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads a socket option into `buf`; returns the length the kernel wrote.
#[allow(unsafe_code)]
fn getsockopt_bytes(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `buf` is writable memory of exactly `len` bytes for the whole call and `len` is a
    // live `socklen_t`; the kernel writes at most `len` bytes into `buf`, stores the written
    // length in `len` and keeps no pointer. Errors are reported by the return value.
    let rc = unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut len) };
    if rc == 0 {
        Ok(usize::try_from(len).unwrap_or(0).min(buf.len()))
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes `addr` as a `sockaddr_in`/`sockaddr_in6` (an IPv4 address as v4-mapped on an IPv6
/// socket).
fn sockaddr_bytes(addr: IpAddr, v6_socket: bool) -> [u8; SOCKADDR_STORAGE_LEN] {
    let mut b = [0u8; SOCKADDR_STORAGE_LEN];
    let v6 = match addr {
        IpAddr::V4(a) if !v6_socket => {
            b[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b[4..8].copy_from_slice(&a.octets());
            return b;
        }
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    b[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
    b[8..24].copy_from_slice(&v6.octets());
    b
}

/// Installs (`Some`) or removes (`None`) the TCP MD5 key for segments to and from `peer`. On a
/// listening socket the key is inherited by the connections it accepts.
pub fn set_md5_key(
    sock: &impl AsRawFd,
    v6_socket: bool,
    peer: IpAddr,
    key: Option<&[u8]>,
) -> io::Result<()> {
    let key = key.unwrap_or_default();
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a TCP MD5 key is at most 80 octets",
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: sockaddr_bytes(peer, v6_socket),
        flags: 0,
        prefix_len: 0,
        key_len: key.len() as u16,
        ifindex: 0,
        key: [0; MD5_MAX_KEY_LEN],
    };
    sig.key[..key.len()].copy_from_slice(key);
    setsockopt(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
}

/// Sets the TTL (IPv4) or unicast hop limit (IPv6) of outgoing packets.
pub fn set_ttl(sock: &impl AsRawFd, v6: bool, ttl: u8) -> io::Result<()> {
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS)
    } else {
        (libc::IPPROTO_IP, libc::IP_TTL)
    };
    setsockopt(sock.as_raw_fd(), level, name, &libc::c_int::from(ttl))
}

/// Drops incoming packets whose TTL (hop limit) is below `min` (GTSM).
pub fn set_min_ttl(sock: &impl AsRawFd, v6: bool, min: u8) -> io::Result<()> {
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT)
    } else {
        (libc::IPPROTO_IP, libc::IP_MINTTL)
    };
    setsockopt(sock.as_raw_fd(), level, name, &libc::c_int::from(min))
}

/// Makes a listener keep the SYN of each connection it accepts (`TCP_SAVE_SYN`), so the TTL the
/// connection arrived with can be checked ([`saved_syn_ttl`]) before anything is read from it.
pub fn set_save_syn(sock: &impl AsRawFd) -> io::Result<()> {
    setsockopt(
        sock.as_raw_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_SAVE_SYN,
        &(1 as libc::c_int),
    )
}

/// The TTL (IPv4) or hop limit (IPv6) of the SYN that opened an accepted connection, when its
/// listener saved it. Reading releases the kernel's copy.
pub fn saved_syn_ttl(sock: &impl AsRawFd) -> io::Result<Option<u8>> {
    let mut buf = [0u8; 512];
    let n = getsockopt_bytes(
        sock.as_raw_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_SAVED_SYN,
        &mut buf,
    )?;
    Ok(syn_ttl(&buf[..n]))
}

/// The TTL or hop limit field of an IP header.
fn syn_ttl(header: &[u8]) -> Option<u8> {
    match header.first()? >> 4 {
        4 => header.get(8).copied(),
        6 => header.get(7).copied(),
        _ => None,
    }
}

/// Makes an IPv6 socket IPv6-only, so an IPv4 listener on the same port can coexist.
pub fn set_v6_only(sock: &impl AsRawFd) -> io::Result<()> {
    setsockopt(
        sock.as_raw_fd(),
        libc::IPPROTO_IPV6,
        libc::IPV6_V6ONLY,
        &(1 as libc::c_int),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_md5_structure_has_the_kernel_layout() {
        assert_eq!(size_of::<TcpMd5Sig>(), 216);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, key), 136);
    }

    #[test]
    fn an_ipv4_peer_on_an_ipv6_socket_is_written_v4_mapped() {
        let b = sockaddr_bytes("192.0.2.1".parse().unwrap(), true);
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), libc::AF_INET6 as u16);
        assert_eq!(&b[18..24], &[0xff, 0xff, 192, 0, 2, 1]);
        let b = sockaddr_bytes("192.0.2.1".parse().unwrap(), false);
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), libc::AF_INET as u16);
        assert_eq!(&b[4..8], &[192, 0, 2, 1]);
    }

    #[test]
    fn the_ttl_is_read_from_ipv4_and_ipv6_headers() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[8] = 255;
        assert_eq!(syn_ttl(&v4), Some(255));
        let mut v6 = [0u8; 40];
        v6[0] = 0x60;
        v6[7] = 1;
        assert_eq!(syn_ttl(&v6), Some(1));
        assert_eq!(syn_ttl(&[]), None);
    }

    #[test]
    fn an_accepted_connection_tells_the_ttl_of_its_syn() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_save_syn(&l).unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        set_ttl(&c, false, 200).unwrap();
        let (s, _) = l.accept().unwrap();
        // The SYN went out with the default TTL (set_ttl came after connect).
        assert!(saved_syn_ttl(&s).unwrap().is_some_and(|t| t > 1));
    }

    #[test]
    fn md5_keys_and_ttls_are_accepted_by_the_kernel() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_md5_key(&l, false, "127.0.0.2".parse().unwrap(), Some(b"secret")).unwrap();
        set_md5_key(&l, false, "127.0.0.2".parse().unwrap(), None).unwrap();
        set_ttl(&l, false, 255).unwrap();
        set_min_ttl(&l, false, 254).unwrap();
    }
}
