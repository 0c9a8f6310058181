//! Pod traffic: every pod pinging and connecting (TCP) to every pod on another node, and
//! continuous pings that count every lost packet across a fault.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use fabric_testkit::{ChildGuard, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::lab::{Lab, POD_TCP_PORT, Pod};

/// Whether `from` gets an answer to one ping to `to` (1 s wait).
pub fn ping(lab: &Lab, from: &Pod, to: Ipv4Addr) -> bool {
    lab.pod_exec(from, &["ping", "-c", "1", "-W", "1", &to.to_string()])
        .status
        .success()
}

/// What `from` reads from a TCP connection to `to`'s listener (its pod name), if anything.
pub fn tcp(lab: &Lab, from: &Pod, to: &Pod) -> Option<String> {
    let out = lab.pod_exec(
        from,
        &[
            "socat",
            "-T",
            "3",
            "-u",
            &format!("TCP:{}:{POD_TCP_PORT},connect-timeout=3", to.ip),
            "STDOUT",
        ],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Checks that every pod pings and opens a TCP connection to every pod on another node (each
/// pair retried until `timeout`); prints the matrix and panics when a pair fails.
pub fn check_reachability(lab: &Lab, pods: &[&Pod], timeout: Duration) {
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for from in pods {
        let mut row = format!("{:>10} |", from.name);
        for to in pods {
            if from.node == to.node {
                row += "    -    ";
                continue;
            }
            let ping_ok = wait_until(timeout, Duration::from_millis(200), || {
                ping(lab, from, to.ip)
            });
            let tcp_ok = wait_until(timeout, Duration::from_millis(200), || {
                tcp(lab, from, to).as_deref() == Some(to.name.as_str())
            });
            row += &format!(
                " {:>3}/{:<3} ",
                if ping_ok { "ok" } else { "NO" },
                if tcp_ok { "ok" } else { "NO" }
            );
            if !ping_ok || !tcp_ok {
                failed.push(format!(
                    "{} ({}, {}) -> {} ({}, {}): ping {}, tcp {}",
                    from.name, from.node, from.ip, to.name, to.node, to.ip, ping_ok, tcp_ok
                ));
            }
        }
        rows.push(row);
    }
    let mut header = format!("{:>10} |", "ping/tcp");
    for to in pods {
        header += &format!(" {:^7} ", to.name);
    }
    let matrix = format!("{header}\n{}", rows.join("\n"));
    eprintln!("{matrix}");
    assert!(
        failed.is_empty(),
        "pods that cannot reach each other:\n{}\n{matrix}",
        failed.join("\n")
    );
}

/// A `ping -i 0.05` from a pod that runs until [`ContinuousPing::stop`].
pub struct ContinuousPing {
    /// What it pings, for messages: `from -> to`.
    pub label: String,
    child: Option<ChildGuard>,
    out: PathBuf,
}

/// The losses of one continuous ping.
#[derive(Debug, Clone)]
pub struct PingLoss {
    /// `from -> to`.
    pub label: String,
    /// Echo requests sent.
    pub transmitted: u64,
    /// Requests without a reply, not counting the last one (possibly in flight when stopped).
    pub lost: Vec<u64>,
}

impl ContinuousPing {
    /// Starts pinging `to` from `from` every 50 ms.
    pub fn start(from: &Pod, to: &Pod, dir: &std::path::Path) -> ContinuousPing {
        let label = format!("{} ({}) -> {} ({})", from.name, from.node, to.name, to.node);
        let out = dir.join(format!("ping-{}-{}.out", from.name, to.name));
        let file = std::fs::File::create(&out).expect("creating the ping output file");
        let child = Command::new("ip")
            .args(["netns", "exec", &from.netns])
            .args(["ping", "-n", "-i", "0.05", "-W", "1", &to.ip.to_string()])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ping");
        ContinuousPing {
            label,
            child: Some(ChildGuard(child)),
            out,
        }
    }

    /// Stops the ping (SIGINT, so it prints its summary) and counts the losses.
    pub fn stop(mut self) -> PingLoss {
        if let Some(mut guard) = self.child.take() {
            let pid = i32::try_from(guard.id()).expect("pid");
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
            let _ = guard.0.wait();
        }
        let mut text = String::new();
        std::fs::File::open(&self.out)
            .and_then(|mut f| f.read_to_string(&mut text))
            .expect("reading the ping output");
        let (transmitted, lost) = count_losses(&text);
        PingLoss {
            label: self.label.clone(),
            transmitted,
            lost,
        }
    }
}

/// From `ping` output: (transmitted, sequence numbers without reply among 1..transmitted-1).
pub fn count_losses(output: &str) -> (u64, Vec<u64>) {
    let mut answered = BTreeSet::new();
    let mut transmitted = 0;
    for line in output.lines() {
        if line.contains("bytes from") && !line.contains("DUP!") {
            if let Some(seq) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("icmp_seq="))
                .and_then(|s| s.parse::<u64>().ok())
            {
                answered.insert(seq);
            }
        } else if let Some(t) = line.split(" packets transmitted").next()
            && line.contains(" packets transmitted")
        {
            transmitted = t.trim().parse().unwrap_or(0);
        }
    }
    // icmp_seq starts at 1; the last request may have been in flight when ping stopped.
    let lost = (1..transmitted).filter(|s| !answered.contains(s)).collect();
    (transmitted, lost)
}

/// Stops every ping and panics, naming each, when any lost a packet or sent too few.
pub fn assert_no_loss(pings: Vec<ContinuousPing>, what: &str) {
    let results: Vec<PingLoss> = pings.into_iter().map(ContinuousPing::stop).collect();
    let mut report = String::new();
    for r in &results {
        report += &format!(
            "  {}: {} sent, {} lost{}\n",
            r.label,
            r.transmitted,
            r.lost.len(),
            if r.lost.is_empty() {
                String::new()
            } else {
                format!(" (icmp_seq {:?})", r.lost)
            }
        );
    }
    eprintln!("continuous pings across {what}:\n{report}");
    assert!(
        results
            .iter()
            .all(|r| r.lost.is_empty() && r.transmitted >= 20),
        "packets lost (or pings that did not run) across {what}:\n{report}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_are_the_unanswered_sequence_numbers_except_the_last() {
        let out = "\
PING 10.244.1.2 (10.244.1.2) 56(84) bytes of data.
64 bytes from 10.244.1.2: icmp_seq=1 ttl=62 time=0.1 ms
From 10.0.0.12 icmp_seq=2 Destination Host Unreachable
64 bytes from 10.244.1.2: icmp_seq=3 ttl=62 time=0.1 ms
64 bytes from 10.244.1.2: icmp_seq=3 ttl=62 time=0.1 ms (DUP!)
64 bytes from 10.244.1.2: icmp_seq=5 ttl=62 time=0.1 ms

--- 10.244.1.2 ping statistics ---
6 packets transmitted, 3 received, +1 errors, 50% packet loss, time 250ms
";
        let (t, lost) = count_losses(out);
        assert_eq!(t, 6);
        assert_eq!(lost, vec![2, 4]);
    }
}
