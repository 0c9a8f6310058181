//! BGP session state as operators read it: the peer table of `calicoctl node status` and the
//! protocol list of `birdc show protocols`, and waiting until the expected sessions are up.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use fabric_testkit::wait_until;

use crate::lab::{Lab, text};

/// One row of the `IPv4 BGP status` / `IPv6 BGP status` tables of `calicoctl node status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    /// PEER ADDRESS.
    pub address: IpAddr,
    /// PEER TYPE (`node-to-node mesh`, `global`, `node specific`).
    pub peer_type: String,
    /// STATE (`up`, `start`, ...).
    pub state: String,
    /// INFO (`Established`, `Active Socket: ...`, ...).
    pub info: String,
}

impl PeerRow {
    /// Whether the session is up and Established.
    pub fn established(&self) -> bool {
        self.state == "up" && self.info.starts_with("Established")
    }
}

/// The peer rows of `calicoctl node status` output (both families).
pub fn parse_node_status(output: &str) -> Vec<PeerRow> {
    output
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().strip_prefix('|')?.split('|').collect();
            if cells.len() < 5 {
                return None;
            }
            let address = cells[0].trim().parse::<IpAddr>().ok()?;
            Some(PeerRow {
                address,
                peer_type: cells[1].trim().to_string(),
                state: cells[2].trim().to_string(),
                info: cells[4].trim().to_string(),
            })
        })
        .collect()
}

/// One BGP protocol of `birdc show protocols`: its name, state and info column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdProtocol {
    /// The protocol name.
    pub name: String,
    /// `up`, `start`, `down`.
    pub state: String,
    /// The rest of the line (`Established`, `Active  Socket: ...`).
    pub info: String,
}

/// The BGP protocols of `birdc show protocols` output.
pub fn parse_bird_protocols(output: &str) -> Vec<BirdProtocol> {
    output
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.get(1) != Some(&"BGP") || words.len() < 4 {
                return None;
            }
            // Name Proto Table State Since(1-2 words) Info...
            let info_start = words
                .iter()
                .position(|w| {
                    [
                        "Established",
                        "Active",
                        "Connect",
                        "Idle",
                        "OpenSent",
                        "OpenConfirm",
                    ]
                    .contains(w)
                })
                .unwrap_or(words.len());
            Some(BirdProtocol {
                name: words[0].to_string(),
                state: words[3].to_string(),
                info: words[info_start..].join(" "),
            })
        })
        .collect()
}

/// Waits until `calicoctl node status` on each node of `expected` lists exactly the given
/// peers, all Established; panics with every node's last answer otherwise.
pub fn wait_node_sessions(
    lab: &Lab,
    expected: &BTreeMap<String, BTreeSet<IpAddr>>,
    timeout: Duration,
) {
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let ok = wait_until(timeout, Duration::from_millis(500), || {
        let mut all = true;
        for (node, peers) in expected {
            let out = lab.exec(node, &["calicoctl", "node", "status"]);
            let rows = parse_node_status(&String::from_utf8_lossy(&out.stdout));
            let up: BTreeSet<IpAddr> = rows
                .iter()
                .filter(|r| r.established())
                .map(|r| r.address)
                .collect();
            let listed: BTreeSet<IpAddr> = rows.iter().map(|r| r.address).collect();
            let good = out.status.success() && &up == peers && &listed == peers;
            if !good {
                all = false;
            }
            last.insert(node.clone(), text(&out));
        }
        all
    });
    if !ok {
        let mut msg = format!("BGP sessions not as expected within {timeout:?}\n");
        for (node, peers) in expected {
            msg += &format!(
                "== {node}: expected Established with {peers:?}; calicoctl node status:\n{}\n",
                last.get(node).map_or("", String::as_str)
            );
        }
        panic!("{msg}");
    }
}

/// Waits until BIRD in `node` has every protocol of `protocols` Established.
pub fn wait_bird_sessions(lab: &Lab, node: &str, protocols: &[&str], timeout: Duration) {
    let mut last = String::new();
    let ok = wait_until(timeout, Duration::from_millis(500), || {
        let out = lab.exec(node, &["birdc", "show", "protocols"]);
        last = text(&out);
        let parsed = parse_bird_protocols(&String::from_utf8_lossy(&out.stdout));
        protocols.iter().all(|p| {
            parsed
                .iter()
                .any(|b| b.name == *p && b.state == "up" && b.info.starts_with("Established"))
        })
    });
    assert!(
        ok,
        "BIRD on {node}: {protocols:?} not all Established within {timeout:?}; last:\n{last}"
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_calico_peer_table_is_parsed_row_by_row() {
        let out = "\
Calico process is running.

IPv4 BGP status
+--------------+-------------------+-------+----------+-------------+
| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |
+--------------+-------------------+-------+----------+-------------+
| 10.0.0.12    | node-to-node mesh | up    | 23:30:04 | Established |
| 10.0.0.13    | node-to-node mesh | start | 23:30:05 | Active      |
+--------------+-------------------+-------+----------+-------------+

IPv6 BGP status
No IPv6 peers found.
";
        let rows = parse_node_status(out);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].established());
        assert_eq!(rows[0].peer_type, "node-to-node mesh");
        assert!(!rows[1].established());
        assert_eq!(rows[1].address, "10.0.0.13".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bird_bgp_protocols_are_parsed_and_others_skipped() {
        let out = "\
BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     12:00:00.000
kernel1    Kernel     master4    up     12:00:00.000
n11        BGP        ---        up     12:00:02.120  Established
tor2       BGP        ---        start  12:00:00.000  Active        Socket: Connection refused
";
        let p = parse_bird_protocols(out);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "n11");
        assert_eq!(p[0].info, "Established");
        assert_eq!(p[1].state, "start");
        assert!(p[1].info.starts_with("Active"));
    }
}
