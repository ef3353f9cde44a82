//! A real SMTP server for the mail tests: `smtp_sink.py` on aiosmtpd (Debian's
//! python3-aiosmtpd), which parses each message with Python's MIME parser and leaves it as
//! JSON in a directory.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::in_ci;

/// The interpreter that has Debian's aiosmtpd (a `python3` earlier on PATH may not).
const PYTHON: &[&str] = &["/usr/bin/python3", "python3"];

pub struct SmtpSink {
    child: Option<Child>,
    python: String,
    pub port: u16,
    dir: tempfile::TempDir,
    /// PEM certificate and key: the server then offers STARTTLS and takes no mail without it.
    tls: Option<(PathBuf, PathBuf)>,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().unwrap().port()
}

impl SmtpSink {
    /// Starts the server, or returns `None` (loudly) when aiosmtpd is missing outside CI.
    /// In CI a missing aiosmtpd fails the test.
    pub fn start() -> Option<SmtpSink> {
        SmtpSink::start_with(None)
    }

    /// [`SmtpSink::start`], requiring STARTTLS with this PEM certificate and key.
    pub fn start_tls(cert: PathBuf, key: PathBuf) -> Option<SmtpSink> {
        SmtpSink::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(PathBuf, PathBuf)>) -> Option<SmtpSink> {
        let python = PYTHON.iter().find(|p| {
            Command::new(p)
                .args(["-c", "import aiosmtpd"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let Some(python) = python else {
            if in_ci() {
                panic!(
                    "aiosmtpd is missing and CI is set: mail tests must not be skipped in CI. \
                     Install Debian's python3-aiosmtpd (.ci/run does)."
                );
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n########## SKIPPING MAIL TEST ##########\n\
                 aiosmtpd not found (apt-get install python3-aiosmtpd).\n\
                 (With CI set this is a hard failure.)\n\
                 #######################################\n"
            );
            return None;
        };
        let mut sink = SmtpSink {
            child: None,
            python: python.to_string(),
            port: free_port(),
            dir: tempfile::tempdir().expect("a directory for mail"),
            tls,
        };
        sink.restart();
        Some(sink)
    }

    /// Stops the server: the relay is down until [`SmtpSink::restart`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port (after [`SmtpSink::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        // Written so that the `loop` CLI's tests can include this file too.
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/smtp_sink.py");
        let mut cmd = Command::new(&self.python);
        cmd.arg(script)
            .arg(self.port.to_string())
            .arg(self.dir.path());
        if let Some((cert, key)) = &self.tls {
            cmd.arg(cert).arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the SMTP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the SMTP server's first line");
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        self.child = Some(child);
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (up to two minutes) until a message to `to` has arrived, and returns the
    /// newest such message.
    pub fn wait_for(&self, to: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(m) = self
                .messages()
                .into_iter()
                .rev()
                .find(|m| m["rcpt_tos"].as_array().unwrap().iter().any(|r| r == to))
            {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail to {to} arrived; received: {:#?}",
                self.messages()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many messages went to `to`.
    pub fn count_to(&self, to: &str) -> usize {
        self.messages()
            .iter()
            .filter(|m| m["rcpt_tos"].as_array().unwrap().iter().any(|r| r == to))
            .count()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
