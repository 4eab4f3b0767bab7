//! What is listening at an OTLP endpoint: nothing, an HTTP/1.1 server (OTLP/HTTP, or something else
//! that speaks HTTP), an HTTP/2 server (gRPC), or TLS. One plain-HTTP request is enough to tell: a gRPC
//! server answers any connection with an HTTP/2 SETTINGS frame, an HTTP server with an `HTTP/1.1` status
//! line, a TLS server with a TLS alert.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Scheme, host, port and path of an endpoint URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!("{url:?} is not an http:// or https:// URL"));
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| format!("{url:?}: unclosed IPv6 bracket"))?;
            (host.to_owned(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| format!("{url:?}: port {p:?} is not a number from 1 to 65535"))?,
            None if https => 443,
            None => 80,
        };
        let path = if path.is_empty() || !path.starts_with('/') { format!("/{path}") } else { path.to_owned() };
        Ok(Endpoint { https, host, port, path })
    }

    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a TCP connection could not be made.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreachable {
    /// The host name does not resolve.
    Resolve(String),
    /// Every address refused: nothing is listening on that port.
    Refused,
    /// No answer within the timeout (a firewall, a wrong host).
    Timeout,
    Other(String),
}

/// Connects to the endpoint's host and port.
pub fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<TcpStream, Unreachable> {
    let addrs: Vec<SocketAddr> = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|e| Unreachable::Resolve(e.to_string()))?
        .collect();
    let mut last = Unreachable::Resolve("no address".into());
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => last = Unreachable::Refused,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock => {
                last = Unreachable::Timeout
            }
            Err(e) => last = Unreachable::Other(e.to_string()),
        }
    }
    Err(last)
}

/// What the server said to a plain HTTP/1.1 request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wire {
    /// An HTTP/1.x status line: the status code and the `Content-Type`, if any.
    Http1 { status: u16, content_type: Option<String> },
    /// An HTTP/2 frame: a gRPC (or other h2c-only) server.
    Http2,
    /// A TLS record: the endpoint wants `https://`.
    Tls,
    /// The connection closed or stayed silent without a byte.
    Silent,
    /// Something else (the first bytes, hex).
    Unknown(String),
}

/// Sends `POST <path>` with an empty protobuf body and classifies the answer.
pub fn probe(endpoint: &Endpoint, timeout: Duration) -> Result<Wire, Unreachable> {
    let mut stream = connect(endpoint, timeout)?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        endpoint.path,
        endpoint.authority()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return Ok(Wire::Silent);
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while buf.len() < 4096 {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() >= 9 && !buf.starts_with(b"HTTP") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Ok(classify(&buf))
}

/// Classifies the first bytes a server sent.
pub fn classify(bytes: &[u8]) -> Wire {
    if bytes.is_empty() {
        return Wire::Silent;
    }
    if bytes.starts_with(b"HTTP/1.") {
        let text = String::from_utf8_lossy(bytes);
        let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let content_type = text.lines().find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.trim().to_owned())
        });
        return Wire::Http1 { status, content_type };
    }
    // An HTTP/2 frame header: 3 bytes length, 1 byte type (0x4 = SETTINGS, 0x7 = GOAWAY), flags, stream 0.
    if bytes.len() >= 9 && matches!(bytes[3], 0x4 | 0x7) && bytes[5..9] == [0, 0, 0, 0] {
        return Wire::Http2;
    }
    // A TLS record: content type handshake (0x16) or alert (0x15), version 3.x.
    if bytes.len() >= 3 && matches!(bytes[0], 0x15 | 0x16) && bytes[1] == 0x03 {
        return Wire::Tls;
    }
    Wire::Unknown(bytes.iter().take(16).map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_endpoints() {
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:4318/v1/traces").unwrap(),
            Endpoint { https: false, host: "127.0.0.1".into(), port: 4318, path: "/v1/traces".into() }
        );
        let e = Endpoint::parse("https://user:pw@collector.example").unwrap();
        assert_eq!((e.https, e.host.as_str(), e.port, e.path.as_str()), (true, "collector.example", 443, "/"));
        assert_eq!(Endpoint::parse("http://[::1]:4317").unwrap().authority(), "[::1]:4317");
        assert!(Endpoint::parse("localhost:4317").is_err());
        assert!(Endpoint::parse("http://host:99999").is_err());
        assert!(Endpoint::parse("http://:4317").is_err());
    }

    #[test]
    fn classifies_what_servers_answer() {
        assert_eq!(
            classify(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\r\n"),
            Wire::Http1 { status: 200, content_type: Some("application/x-protobuf".into()) }
        );
        assert_eq!(classify(b"HTTP/1.1 404 Not Found\r\n\r\n"), Wire::Http1 { status: 404, content_type: None });
        // What Jaeger's OTLP gRPC port sends first: a SETTINGS frame.
        assert_eq!(classify(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0x40, 0]), Wire::Http2);
        assert_eq!(classify(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]), Wire::Tls);
        assert_eq!(classify(b""), Wire::Silent);
        assert!(matches!(classify(b"SSH-2.0-OpenSSH"), Wire::Unknown(_)));
    }

    #[test]
    fn a_closed_port_is_refused_and_a_listener_is_probed() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let closed = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        assert_eq!(connect(&closed, Duration::from_secs(1)).err(), Some(Unreachable::Refused));

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n").unwrap();
            request
        });
        let open = Endpoint::parse(&format!("http://{addr}/v1/traces")).unwrap();
        assert_eq!(
            probe(&open, Duration::from_secs(2)),
            Ok(Wire::Http1 { status: 200, content_type: Some("text/html".into()) })
        );
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /v1/traces HTTP/1.1\r\n"), "{request}");
    }
}
