//! A loopback TCP proxy that a test can cut and restore, to simulate a network partition
//! between one client and a server that stays up for everyone else.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Forwards connections from `127.0.0.1:<port>` to a target; stops forwarding when cut.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

#[derive(Debug, Default)]
struct ProxyState {
    cut: AtomicBool,
    stop: AtomicBool,
    /// Both sides of every forwarded connection, so `cut` can shut them down.
    open: Mutex<Vec<TcpStream>>,
}

impl ProxyState {
    fn shut_all(&self) {
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl TcpProxy {
    /// Starts forwarding from a free loopback port to `target`.
    pub fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy port");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if st.cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut open = st.open.lock().unwrap();
                    open.push(client.try_clone().expect("cloning a socket"));
                    open.push(server.try_clone().expect("cloning a socket"));
                }
                pipe(
                    client.try_clone().expect("cloning a socket"),
                    server.try_clone().expect("cloning a socket"),
                );
                pipe(server, client);
            }
        });
        TcpProxy { addr, state }
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, for clients that take URLs.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Breaks every open connection and refuses new ones (accepted, then closed at once).
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        self.state.shut_all();
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.state.shut_all();
        // Wake the accept loop so it sees the stop flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` to `to` on a thread until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
