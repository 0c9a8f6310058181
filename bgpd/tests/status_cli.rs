//! `bgpd show` over the status socket (root, namespaces): the neighbour and route tables, and
//! the JSON response other tools (calicoctl node status) read.
#![allow(clippy::unwrap_used)]

mod common;

use bgpd::status::protocol::Response;
use common::{Bgpd, SESSION, two_namespaces};
use fabric_testkit::{Bird, require_root};

fn show(bgpd: &Bgpd, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .arg("show")
        .args(args)
        .arg("--socket")
        .arg(bgpd.socket())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bgpd_show_prints_neighbours_and_routes_as_tables_and_json() {
    require_root();
    let (a, b) = two_namespaces("cli");
    let bgpd = Bgpd::start(
        &a,
        r#"router-id = "192.0.2.1"
asn = 65001
listen = ["192.0.2.1:179"]
connect-retry = 1

[[neighbor]]
address = "192.0.2.2"
remote-asn = 65002
description = "node-to-node mesh"

[[originate]]
prefix = "10.244.1.0/26"
communities = ["65001:100"]
"#,
    );
    let bird = Bird::start(
        &b,
        r#"router id 192.0.2.2;
protocol device { scan time 2; }
protocol static s4 { ipv4; route 10.245.0.0/26 blackhole; }
protocol bgp peer4 {
  local 192.0.2.2 as 65002;
  neighbor 192.0.2.1 as 65001;
  connect delay time 1; connect retry time 2;
  ipv4 { import all; export where source = RTS_STATIC; };
}
"#,
    )
    .unwrap();
    bird.wait_established("peer4", SESSION).unwrap();
    bgpd.wait_established("192.0.2.2");
    bgpd.wait_route("10.245.0.0/26", "192.0.2.2", true);

    let table = show(&bgpd, &["neighbors"]);
    let line = table.lines().find(|l| l.starts_with("192.0.2.2")).unwrap();
    for word in ["65002", "node-to-node mesh", "Established", "1/1/1"] {
        assert!(line.contains(word), "{word} missing from {line:?}\n{table}");
    }
    let routes = show(&bgpd, &["routes"]);
    let own = routes
        .lines()
        .find(|l| l.contains("10.244.1.0/26"))
        .unwrap();
    assert!(own.starts_with('*'), "{own}");
    assert!(
        own.contains("local") && own.contains("comm 65001:100"),
        "{own}"
    );
    assert!(own.contains("self") && own.contains("only path"), "{own}");
    let learned = routes
        .lines()
        .find(|l| l.contains("10.245.0.0/26"))
        .unwrap();
    assert!(
        learned.contains("192.0.2.2") && learned.contains("65002 igp"),
        "{learned}"
    );

    let json: Response = serde_json::from_str(&show(&bgpd, &["neighbors", "--json"])).unwrap();
    let n = &json.neighbors.unwrap()[0];
    assert_eq!(n.state, "Established");
    assert_eq!(n.description.as_deref(), Some("node-to-node mesh"));
    assert_eq!(n.peer_type, "external");
    let one: Response =
        serde_json::from_str(&show(&bgpd, &["routes", "10.245.0.0/26", "--json"])).unwrap();
    assert_eq!(one.routes.unwrap().len(), 1);
    let summary = show(&bgpd, &["summary"]);
    assert!(
        summary.starts_with("router id 192.0.2.1  AS 65001"),
        "{summary}"
    );
    eprintln!("{table}\n{routes}\n{summary}");
}
