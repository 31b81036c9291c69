//! One real Kafka broker per test binary, started with the project's own launcher
//! (`scripts/kafka-local run`) on free loopback ports and a throw-away data folder, unless
//! `STOCKSTREAM_TEST_BROKERS` names a running one.
//!
//! The broker never outlives the tests: it is stopped at process exit, and the launcher
//! also stops it by itself when this process disappears (e.g. killed).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Child;
use std::sync::OnceLock;

use super::launcher::Launcher;

pub struct Broker {
    pub bootstrap: String,
    /// The SASL_SSL listener, on the broker the tests start themselves.
    pub secure: Option<Secure>,
    /// The mutual-TLS listener, on the broker the tests start themselves.
    pub mtls: Option<Mtls>,
}

/// A mutual-TLS listener of the test broker: clients must show a certificate of its CA.
pub struct Mtls {
    pub bootstrap: String,
    pub ca: PathBuf,
    /// A client certificate the test CA signed, and its key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A client certificate of another CA, and its key: the broker refuses it.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
}

/// A SASL_SSL (SCRAM over TLS) listener of the test broker and what a client needs for it.
pub struct Secure {
    pub bootstrap: String,
    /// The PEM file of the test CA that signed the broker's certificate.
    pub ca: PathBuf,
}

/// The SCRAM user the test broker is formatted with.
pub const SCRAM_USER: &str = "alice";
pub const SCRAM_PASSWORD: &str = "alice-Pa55-word";

impl Broker {
    /// The mutual-TLS listener; fails loudly on a broker the tests did not start.
    pub fn mtls(&self) -> &Mtls {
        self.mtls.as_ref().expect(
            "this test needs the mutual-TLS listener of the broker the tests start themselves \
             (scripts/kafka-local --ssl-port); unset STOCKSTREAM_TEST_BROKERS to run it",
        )
    }

    /// The SASL_SSL listener; fails loudly on a broker the tests did not start.
    pub fn secure(&self) -> &Secure {
        self.secure.as_ref().expect(
            "this test needs the SASL_SSL listener of the broker the tests start themselves \
             (scripts/kafka-local --sasl-ssl-port); unset STOCKSTREAM_TEST_BROKERS to run it",
        )
    }
}

static BROKER: OnceLock<Result<Broker, String>> = OnceLock::new();

/// scripts/kafka-local, as the tests run it.
pub(super) const KAFKA_LOCAL: Launcher = Launcher {
    script: "kafka-local",
    folder: "test-kafka",
    watch: "--watch-pid",
    env: &[],
    headline: "KAFKA DID NOT START",
    needs: "The integration tests need a real Apache Kafka broker. They start one with \
            scripts/kafka-local, which needs Java 17+, Maven (to fetch Kafka's jars from Maven \
            Central) and openssl (for the test CA of its SASL_SSL listener).\n\
            Fix: install them (Debian/Ubuntu: apt-get install openjdk-17-jre-headless maven \
            openssl), or point STOCKSTREAM_TEST_BROKERS at a running broker.",
};

/// The shared broker. Panics with the reason and the fix when it cannot start.
pub fn broker() -> &'static Broker {
    match BROKER.get_or_init(start) {
        Ok(b) => b,
        Err(msg) => panic!("{msg}"),
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free loopback port")
}

fn start() -> Result<Broker, String> {
    if let Ok(bootstrap) = std::env::var("STOCKSTREAM_TEST_BROKERS") {
        if !bootstrap.trim().is_empty() {
            return Ok(Broker {
                bootstrap,
                secure: None,
                mtls: None,
            });
        }
    }
    let (port, cport, sport, tport) = (free_port(), free_port(), free_port(), free_port());
    let (said, log_path, _) = KAFKA_LOCAL.launch_shared(
        "broker",
        &[
            "--timeout",
            "120",
            "--port",
            &port.to_string(),
            "--controller-port",
            &cport.to_string(),
            "--sasl-ssl-port",
            &sport.to_string(),
            "--ssl-port",
            &tport.to_string(),
            "--scram-user",
            &format!("{SCRAM_USER}:{SCRAM_PASSWORD}"),
        ],
    )?;
    // "SASL_SSL 127.0.0.1:PORT ca=PATH", printed before READY.
    let secure = said.iter().find_map(|line| {
        let rest = line.strip_prefix("SASL_SSL ")?;
        let (bootstrap, ca) = rest.split_once(" ca=")?;
        Some(Secure {
            bootstrap: bootstrap.to_string(),
            ca: PathBuf::from(ca),
        })
    });
    if secure.is_none() {
        return Err(KAFKA_LOCAL.failure(
            "scripts/kafka-local did not say where its SASL_SSL listener is",
            &log_path,
        ));
    }
    // "SSL 127.0.0.1:PORT ca=PATH cert=PATH key=PATH", printed before READY.
    let mtls = said.iter().find_map(|line| {
        let rest = line.strip_prefix("SSL ")?;
        let (bootstrap, rest) = rest.split_once(" ca=")?;
        let (ca, rest) = rest.split_once(" cert=")?;
        let (cert, key) = rest.split_once(" key=")?;
        let tls = PathBuf::from(ca).parent()?.to_path_buf();
        Some(Mtls {
            bootstrap: bootstrap.to_string(),
            ca: PathBuf::from(ca),
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
            stranger_cert: tls.join("stranger.pem"),
            stranger_key: tls.join("stranger.key"),
        })
    });
    if mtls.is_none() {
        return Err(KAFKA_LOCAL.failure(
            "scripts/kafka-local did not say where its mutual-TLS listener is",
            &log_path,
        ));
    }
    // The Child handle is dropped without killing: stop_at_exit owns the shutdown.
    Ok(Broker {
        bootstrap: format!("127.0.0.1:{port}"),
        secure,
        mtls,
    })
}

/// A broker of a test's own, which the test may stop and start again (same ports, same
/// data). It stops when dropped, and with the test process in any case.
pub struct Dedicated {
    pub bootstrap: String,
    port: u16,
    cport: u16,
    data: PathBuf,
    launcher: Option<Child>,
}

impl Dedicated {
    pub fn start() -> Dedicated {
        let (port, cport) = (free_port(), free_port());
        let data = KAFKA_LOCAL.data(&format!("dedicated-{}-{port}", std::process::id()));
        let mut b = Dedicated {
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            cport,
            data,
            launcher: None,
        };
        b.resume();
        b
    }

    /// Starts the broker again on its ports and data.
    pub fn resume(&mut self) {
        // A broker restarted after a SIGKILL recovers its logs and waits for the controller
        // to expire its old session: 25–45 s on an idle machine, up to ~2 min measured with
        // the CPUs busy, so its launcher gets 4 minutes.
        let (port, cport) = (self.port.to_string(), self.cport.to_string());
        let args = [
            "--timeout",
            "240",
            "--port",
            &port,
            "--controller-port",
            &cport,
        ];
        match KAFKA_LOCAL.start(&self.data, &args) {
            Ok((child, _)) => self.launcher = Some(child),
            Err(msg) => panic!("{msg}"),
        }
    }

    /// The broker's JVM, as the launcher recorded it.
    fn java_pid(&self) -> i32 {
        let text = std::fs::read_to_string(self.data.join("broker.pid"))
            .expect("the launcher writes broker.pid");
        text.trim().parse().expect("a pid in broker.pid")
    }

    /// Kills the broker's JVM at once (SIGKILL), as a crash would, keeping its data; the
    /// launcher then exits by itself.
    pub fn kill(&mut self) {
        // SAFETY: signalling the broker this test started.
        unsafe { libc::kill(self.java_pid(), libc::SIGKILL) };
        if let Some(mut child) = self.launcher.take() {
            let _ = child.wait();
        }
    }

    /// Freezes the broker's JVM (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        // SAFETY: signalling the broker this test started.
        unsafe { libc::kill(self.java_pid(), libc::SIGSTOP) };
    }

    /// Lets a frozen broker carry on (SIGCONT).
    pub fn thaw(&self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.java_pid(), libc::SIGCONT) };
    }

    /// Stops the broker cleanly (SIGTERM), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.launcher.take() {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        if self.launcher.is_some() {
            self.thaw();
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
