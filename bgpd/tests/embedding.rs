//! The library API calico-node embeds (root, namespaces): `Daemon::start` inside a namespace,
//! the best-path stream, incremental `reconfigure`, status, metrics, and `shutdown`.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use bgpd::{Config, Daemon, NeighborConfig, OriginateConfig, RouteUpdate};
use common::{POLL, ROUTES, SESSION, two_namespaces};
use fabric_testkit::{Bird, require_root, wait_until};

const BIRD: &str = r#"router id 192.0.2.2;
protocol device { scan time 2; }
protocol static s4 { ipv4; route 10.245.0.0/26 blackhole; }
protocol bgp peer4 {
  local 192.0.2.2 as 65002;
  neighbor 192.0.2.1 as 65001;
  hold time 9; connect delay time 1; connect retry time 2; error wait time 1,5;
  ipv4 { import all; export where source = RTS_STATIC; };
}
"#;

async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: bgpd\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn has(batch: &[RouteUpdate], prefix: &str, present: bool) -> bool {
    batch
        .iter()
        .any(|u| u.prefix.to_string() == prefix && u.paths.is_empty() != present)
}

#[test]
fn an_embedded_daemon_streams_best_paths_and_reconfigures_in_place() {
    require_root();
    let (a, b) = two_namespaces("emb");
    let bird = Bird::start(&b, BIRD).unwrap();
    let peer: IpAddr = "192.0.2.2".parse().unwrap();
    a.run_in(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut config = Config::new("192.0.2.1".parse().unwrap(), 65001);
            config.listen = vec!["192.0.2.1:179".parse().unwrap()];
            config.hold_time = 9;
            config.connect_retry = 1;
            config.metrics_address = Some("127.0.0.1:9179".parse().unwrap());
            let mut n = NeighborConfig::new(peer, 65002);
            n.description = Some("global".into());
            config.neighbors.push(n);
            let handle = Daemon::start(config.clone()).await.unwrap();
            let mut routes = handle.routes().await.unwrap();

            // BIRD's route arrives on the stream with its next hop and peer.
            let mut seen = Vec::new();
            let deadline = tokio::time::Instant::now() + ROUTES;
            while !has(&seen, "10.245.0.0/26", true) {
                let batch = tokio::time::timeout_at(deadline, routes.recv())
                    .await
                    .expect("no route from BIRD on the stream")
                    .unwrap();
                seen.extend(batch);
            }
            let u = seen
                .iter()
                .find(|u| u.prefix.to_string() == "10.245.0.0/26")
                .unwrap();
            assert_eq!(u.paths[0].peer, Some(peer));
            assert_eq!(u.paths[0].next_hop_addr().to_string(), "192.0.2.2");

            let status = handle.status().await.unwrap();
            assert_eq!(status.neighbors[0].state, "Established");
            assert_eq!(status.neighbors[0].description.as_deref(), Some("global"));
            let since = status.neighbors[0].since_unix_ms;

            // An origination added in place: on the stream (peer None) and no session reset.
            let mut more = config.clone();
            more.originate
                .push(OriginateConfig::new("10.244.1.0/26".parse().unwrap()));
            let report = handle.reconfigure(more.clone()).await.unwrap();
            assert_eq!(report.originations_changed.len(), 1);
            assert!(!report.speaker_restarted);
            let batch = tokio::time::timeout(ROUTES, routes.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(has(&batch, "10.244.1.0/26", true), "{batch:?}");
            let own = batch
                .iter()
                .find(|u| u.prefix.to_string() == "10.244.1.0/26")
                .unwrap();
            assert_eq!(own.paths[0].peer, None);
            let status = handle.status().await.unwrap();
            assert_eq!(status.neighbors[0].since_unix_ms, since);

            // A refused configuration changes nothing.
            let mut bad = more.clone();
            bad.neighbors.push(NeighborConfig::new(peer, 65003));
            let err = handle.reconfigure(bad).await.unwrap_err();
            assert!(
                format!("{:?}", err).contains("neighbor[1].address"),
                "{err:?}"
            );
            assert_eq!(handle.config(), more);

            // Metrics over HTTP.
            let metrics = http_get("127.0.0.1:9179", "/metrics").await;
            assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
            assert!(
                metrics.contains("bgpd_peer_up{peer=\"192.0.2.2\"} 1"),
                "{metrics}"
            );
            assert!(
                metrics.contains("bgpd_update_processing_seconds_count"),
                "{metrics}"
            );

            // A clean shutdown withdraws everything from the stream, then ends it.
            handle.shutdown(false).await.unwrap();
            let mut last = Vec::new();
            while let Some(batch) = tokio::time::timeout(Duration::from_secs(10), routes.recv())
                .await
                .unwrap()
            {
                last.extend(batch);
            }
            assert!(has(&last, "10.245.0.0/26", false), "{last:?}");
            handle.stopped().await;
        });
    });
    // BIRD saw our Cease.
    let down = wait_until(SESSION, POLL, || {
        bird.protocol_state("peer4").as_deref() != Some("Established")
    });
    assert!(down);
}
