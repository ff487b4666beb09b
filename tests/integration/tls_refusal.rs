//! A server that answers STARTTLS with 220 and then does not speak TLS: bytes that are not
//! TLS where the ServerHello belongs get one classification whatever the packet timing (they
//! came in the same write as the 220, in a write of their own, or after the ClientHello),
//! repeated on loopback with a server the test writes; and a close or reset after the 220,
//! retried with back-off, is a failure when every attempt ends so.

use std::net::SocketAddr;
use std::time::Duration;

use mxprobe_core::domain::DomainName;
use mxprobe_core::smtp::{EhloName, Phase, SmtpOutcome};
use mxprobe_probe::capture;
use mxprobe_probe::starttls::{SmtpConfig, probe};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const GARBAGE: &[u8] = b"this is not a TLS ServerHello\r\n";

/// How the test server sends its garbage after the 220 reply to STARTTLS.
#[derive(Debug, Clone, Copy)]
enum Garbage {
    /// In the same write as the 220 (the probe reads both at once).
    WithThe220,
    /// In its own write right after the 220 (either way, depending on timing).
    RightAfter,
    /// Once the ClientHello has started to arrive.
    AfterTheClientHello,
}

/// An SMTP server on loopback that offers STARTTLS and sends `GARBAGE` instead of TLS, for
/// every connection, until the test ends.
async fn garbage_server(how: Garbage) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut conn = BufReader::new(tcp);
                if conn
                    .get_mut()
                    .write_all(b"220 garbage.test ESMTP\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let tcp = conn.get_mut();
                    let written = match verb.as_str() {
                        "EHLO" => tcp.write_all(b"250-garbage.test\r\n250 STARTTLS\r\n").await,
                        "STAR" => break,
                        _ => tcp.write_all(b"500 5.5.2 what\r\n").await,
                    };
                    if written.is_err() {
                        return;
                    }
                }
                let mut tcp = conn.into_inner();
                let _ = match how {
                    Garbage::WithThe220 => {
                        tcp.write_all(&[b"220 go ahead\r\n".as_slice(), GARBAGE].concat())
                            .await
                    }
                    Garbage::RightAfter => {
                        let _ = tcp.write_all(b"220 go ahead\r\n").await;
                        tcp.write_all(GARBAGE).await
                    }
                    Garbage::AfterTheClientHello => {
                        let _ = tcp.write_all(b"220 go ahead\r\n").await;
                        let mut first = [0u8; 1];
                        let _ = tcp.read(&mut first).await;
                        tcp.write_all(GARBAGE).await
                    }
                };
                // Keep the connection open until the client goes (no reset to race with).
                let mut sink = [0u8; 1024];
                while let Ok(Ok(1..)) =
                    tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut sink)).await
                {
                }
            });
        }
    });
    addr
}

fn config() -> SmtpConfig {
    SmtpConfig {
        ehlo_name: EhloName::parse("probe.mxprobe.example").unwrap(),
        connect_timeout: Duration::from_millis(500),
        phase_timeout: Duration::from_millis(500),
        deadline: Duration::from_secs(3),
        tls: capture::client_config(),
    }
}

/// RUNS probes of a server that sends the garbage in its own write right after the 220 (the
/// timing that used to flip the classification between a protocol error and a handshake
/// failure) all end the same, and the same as the two servers whose timing is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_server_hello_is_classified_the_same_every_time() {
    const RUNS: usize = 20;
    let mx = DomainName::parse("mx.garbage.test").unwrap();
    let config = config();
    let mut outcomes = Vec::new();
    for how in [Garbage::WithThe220, Garbage::AfterTheClientHello] {
        let addr = garbage_server(how).await;
        outcomes.push((how, probe(&config, &mx, addr).await.outcome));
    }
    let addr = garbage_server(Garbage::RightAfter).await;
    for _ in 0..RUNS {
        outcomes.push((Garbage::RightAfter, probe(&config, &mx, addr).await.outcome));
    }
    let first = &outcomes[0].1;
    assert!(
        matches!(first, SmtpOutcome::TlsHandshakeFailed { alert: None, .. }),
        "{first:?}"
    );
    assert!(!first.is_inconclusive());
    for (how, outcome) in &outcomes {
        assert_eq!(outcome, first, "{how:?}");
    }
}

/// The outcome of one attempt at a server that closes (or resets) after its 220 to
/// STARTTLS is "could not tell" on its own; the scanner's retries and the evaluation turn
/// "every attempt" into a failure (see the lab scenario's reset.test and
/// close-after-starttls.test).
#[tokio::test]
async fn one_close_after_starttls_alone_is_inconclusive() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let mut conn = BufReader::new(tcp);
        let _ = conn.get_mut().write_all(b"220 close.test ESMTP\r\n").await;
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            if verb == "STAR" {
                break;
            }
            let _ = conn
                .get_mut()
                .write_all(b"250-close.test\r\n250 STARTTLS\r\n")
                .await;
        }
        let mut tcp = conn.into_inner();
        let _ = tcp.write_all(b"220 go ahead\r\n").await;
        let mut hello = [0u8; 4096];
        let _ = tcp.read(&mut hello).await;
        let _ = tcp.shutdown().await;
        let _ = tcp.read(&mut hello).await;
    });
    let facts = probe(
        &config(),
        &DomainName::parse("mx.close.test").unwrap(),
        addr,
    )
    .await;
    assert_eq!(
        facts.outcome,
        SmtpOutcome::ClosedByServer {
            phase: Phase::TlsHandshake
        }
    );
    assert!(facts.outcome.refuses_tls());
    assert!(facts.outcome.is_inconclusive());
    assert!(
        !facts.refused_tls_every_time(),
        "one attempt is not every time"
    );
}
