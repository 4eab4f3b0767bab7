//! A minimal OTLP/HTTP receiver on loopback that keeps the raw request bodies, for tests that must see
//! exactly what left the process (and for collector-down/up scenarios).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Each request's path and body, in arrival order.
type Requests = Mutex<Vec<(String, Vec<u8>)>>;

/// A running receiver; stops (and joins its thread) on drop.
pub struct Receiver {
    addr: SocketAddr,
    requests: Arc<Requests>,
    stop: Arc<AtomicBool>,
    /// While set, the answer to the first request waits (see [`Receiver::holding_first`]).
    hold: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Listens on a free loopback port.
    pub fn start() -> Receiver {
        Receiver::start_on(TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
    }

    /// Listens on a free loopback port and keeps the first request waiting for its answer (it is
    /// received and kept, so [`Receiver::bodies`] shows it) until [`Receiver::release`]: a collector
    /// that is slow to answer, for as long as a test needs.
    pub fn holding_first() -> Receiver {
        let receiver = Receiver::start();
        receiver.hold.store(true, Ordering::SeqCst);
        receiver
    }

    /// Answers the request held by [`Receiver::holding_first`] and every later one at once.
    pub fn release(&self) {
        self.hold.store(false, Ordering::SeqCst);
    }

    /// Listens on `addr` (a port chosen earlier, e.g. to start the "collector" late).
    pub fn start_at(addr: SocketAddr) -> Receiver {
        Receiver::start_on(TcpListener::bind(addr).expect("bind the chosen loopback port"))
    }

    fn start_on(listener: TcpListener) -> Receiver {
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop, hold) = (requests.clone(), stop.clone(), hold.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (requests, stop, hold) = (requests.clone(), stop.clone(), hold.clone());
                            std::thread::spawn(move || serve(stream, &requests, &stop, &hold));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Receiver { addr, requests, stop, hold, thread: Some(thread) }
    }

    /// The base endpoint, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request body received so far (OTLP protobuf, uncompressed unless asked otherwise).
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().iter().map(|(_, body)| body.clone()).collect()
    }

    /// The bodies of the requests to `path` (e.g. `/v1/metrics`).
    pub fn bodies_to(&self, path: &str) -> Vec<Vec<u8>> {
        self.requests.lock().unwrap().iter().filter(|(p, _)| p == path).map(|(_, body)| body.clone()).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves HTTP/1.1 requests on one connection: reads each body, answers 200 with an empty
/// `ExportTraceServiceResponse` (an empty protobuf message). The first request of all waits for its
/// answer while `hold` is set (until the receiver stops).
fn serve(stream: TcpStream, requests: &Requests, stop: &AtomicBool, hold: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let first = {
            let mut requests = requests.lock().unwrap();
            requests.push((path, body));
            requests.len() == 1
        };
        while first && hold.load(Ordering::SeqCst) && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(2));
        }
        let response = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
