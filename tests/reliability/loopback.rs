//! Every listening socket the project opens binds loopback by default: the process's own listening TCP
//! sockets (read from /proc) after a full pipeline is up, and every listener in the Jaeger configuration
//! the scripts and tests start.

use crate::exclusive;
use kotaemon_trace::config::{Config, JaegerRemote, MetricsConfig, Protocol, Sampler, TailConfig};
use kotaemon_trace::init_with;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The local addresses of the TCP sockets in LISTEN state that this process holds (Linux /proc).
fn listening_sockets() -> Vec<SocketAddr> {
    let inodes: HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    let mut found = Vec::new();
    for (file, v6) in [("/proc/self/net/tcp", false), ("/proc/self/net/tcp6", true)] {
        let Ok(table) = std::fs::read_to_string(file) else { continue };
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if fields.len() < 10 || fields[3] != "0A" || !inodes.contains(fields[9]) {
                continue;
            }
            let (ip, port) = fields[1].split_once(':').expect("addr:port");
            let port = u16::from_str_radix(port, 16).expect("hex port");
            let ip = if v6 {
                let mut bytes = [0u8; 16];
                for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                    let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).expect("hex");
                    chunk.copy_from_slice(&word.to_ne_bytes());
                }
                IpAddr::V6(Ipv6Addr::from(bytes))
            } else {
                IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(ip, 16).expect("hex").to_ne_bytes()))
            };
            found.push(SocketAddr::new(ip, port));
        }
    }
    found
}

fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

#[test]
fn the_socket_check_sees_a_wildcard_listener() {
    let wildcard = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = wildcard.local_addr().unwrap().port();
    let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sockets = listening_sockets();
    assert!(sockets.iter().any(|a| a.port() == port && !is_loopback(a)), "{sockets:?}");
    assert!(sockets.iter().any(|a| *a == local.local_addr().unwrap() && is_loopback(a)), "{sockets:?}");
}

#[test]
fn a_running_pipeline_listens_on_no_public_address() {
    let _one = exclusive();
    let remote = JaegerRemote {
        endpoint: "http://127.0.0.1:9/sampling".into(),
        polling_interval: Duration::from_millis(50),
        initial_sampling_rate: 1.0,
    };
    let config = Config::builder()
        .protocol(Protocol::Grpc)
        .otlp_endpoint("http://127.0.0.1:9")
        .otlp_timeout(Duration::from_millis(200))
        .sampler(Sampler::ParentBased(Box::new(Sampler::JaegerRemote(remote))))
        .tail_sampling(TailConfig::default())
        .metrics({
            let mut c = MetricsConfig::default();
            c.prometheus = Some("127.0.0.1:0".into());
            c
        })
        .build();
    let guard = init_with(config).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let listening = listening_sockets();
    let public: Vec<SocketAddr> = listening.iter().copied().filter(|a| !is_loopback(a)).collect();
    let metrics = guard.prometheus_address().expect("the scrape endpoint runs");
    let _ = guard.shutdown();
    assert!(public.is_empty(), "listening beyond loopback: {public:?}");
    // The one socket the runtime opens on request, the metrics endpoint, is among them, on loopback.
    assert!(listening.contains(&metrics), "{metrics} not seen among {listening:?}");
}

#[test]
fn the_jaeger_configuration_binds_loopback_only() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/jaeger-config.yaml");
    let yaml = std::fs::read_to_string(path).unwrap();
    let endpoints: Vec<&str> = yaml.lines().map(str::trim).filter(|l| l.starts_with("endpoint:")).collect();
    assert_eq!(endpoints.len(), 7, "query http/grpc, sampling http/grpc, health, OTLP grpc/http: {endpoints:?}");
    for line in endpoints {
        assert!(line.starts_with("endpoint: \"127.0.0.1:"), "{line}");
    }
}
