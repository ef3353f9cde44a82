//! A real HAProxy (Debian's `haproxy`) in front of server nodes, as a provider runs it: TCP
//! mode, TLS passed through, round robin per connection, a PROXY protocol v2 header on
//! every connection to a node, and health checks that take a stopped node out of the
//! rotation within a second.
//!
//! Missing `haproxy` skips loudly, except under CI, where it fails.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::in_ci;

/// A running HAProxy; killed when dropped.
pub struct Haproxy {
    /// Where clients connect: 127.0.0.1 and a free port.
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts HAProxy passing connections to `nodes` in turn. `None` (after a loud message)
    /// when it is not installed and CI is not set.
    pub fn start(nodes: &[SocketAddr]) -> Option<Haproxy> {
        let binary = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file());
        let Some(binary) = binary else {
            if in_ci() {
                panic!(
                    "haproxy was not found and CI is set: the load balancer tests must not \
                     be skipped in CI. Install Debian's `haproxy` package (.ci/run does)."
                );
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n########## SKIPPING LOAD-BALANCER TEST ##########\n\
                 haproxy not found (apt-get install haproxy).\n\
                 (With CI set this is a hard failure.)\n"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut config = format!(
            "global\n    maxconn 4096\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 300s\n    \
             timeout server 300s\n    timeout check 1s\n\
             frontend loop\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\
             backend nodes\n    balance roundrobin\n"
        );
        for (i, node) in nodes.iter().enumerate() {
            config += &format!(
                "    server node{i} {node} send-proxy-v2 check inter 300ms fall 1 rise 1\n"
            );
        }
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("writing haproxy.cfg");
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting haproxy");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Haproxy {
            addr,
            child,
            _dir: dir,
        })
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
