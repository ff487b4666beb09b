//! The probe's SMTP conversation as a state machine (rustls-style): each state is named after
//! the reply it waits for, each transition consumes the state and returns the next [`Step`]:
//! send a command, upgrade to TLS, or finish with an [`SmtpOutcome`].
//!
//! ```text
//! ExpectGreeting ──220──► EHLO ─► ExpectEhloReply ──250 + STARTTLS──► STARTTLS ─► ExpectStartTlsReply
//!                                   │ 5yz ─► HELO ─► ExpectHeloReply ─► QUIT            │ 220
//!                                   │ 250 without STARTTLS ─► QUIT                      ▼
//!                                   ▼                                            UpgradeTls (driver)
//!                                 QUIT ─► ExpectQuitReply ─► Finish ◄── QUIT ◄── ExpectEhloAfterTls
//! ```
//!
//! The probe never sends MAIL, RCPT or DATA. A 421 in any phase ends the dialogue at once
//! (RFC 5321 §3.8: the server is closing the channel). Otherwise the dialogue says QUIT before
//! it finishes, as a polite client does (RFC 5321 §4.1.1.10), and the outcome decided before
//! QUIT stands whatever happens to QUIT.
//!
//! No I/O: `probe.rs` reads replies, feeds them here and performs the steps; I/O failures are
//! turned into outcomes here too ([`State::on_failure`]), so every classification is testable
//! without a socket.

use super::reply::Reply;
use super::{EhloName, Phase, SmtpOutcome};

/// A command the probe sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO <name>` (RFC 5321 §4.1.1.1).
    Ehlo(EhloName),
    /// `HELO <name>` (RFC 5321 §4.1.1.1), only after EHLO was refused with 5yz.
    Helo(EhloName),
    /// `STARTTLS` (RFC 3207 §4).
    StartTls,
    /// `QUIT` (RFC 5321 §4.1.1.10).
    Quit,
}

impl Command {
    /// The command line as sent, CRLF included.
    pub fn to_wire(&self) -> Vec<u8> {
        match self {
            Self::Ehlo(name) => format!("EHLO {name}\r\n").into_bytes(),
            Self::Helo(name) => format!("HELO {name}\r\n").into_bytes(),
            Self::StartTls => b"STARTTLS\r\n".to_vec(),
            Self::Quit => b"QUIT\r\n".to_vec(),
        }
    }
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send `command`, then read a reply and give it to `next`.
    Send {
        /// The command.
        command: Command,
        /// The state that waits for its reply.
        next: State,
    },
    /// The server said 220 to STARTTLS: perform the TLS handshake (SNI = MX name), then call
    /// [`TlsUpgrade::established`] (and send the command it gives) or, on an I/O failure,
    /// [`TlsUpgrade::failed`].
    UpgradeTls(TlsUpgrade),
    /// The dialogue is over; close the connection.
    Finish(SmtpOutcome),
}

/// An I/O failure while waiting for a reply (or performing a step) in some phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No bytes for longer than the phase timeout.
    Timeout,
    /// End of stream.
    Closed,
    /// TCP reset or broken pipe.
    Reset,
    /// Another socket error (its text).
    Io(String),
    /// Bytes that are not a valid reply (the parser's reason).
    Malformed(String),
    /// The overall deadline passed.
    Deadline,
}

/// A dialogue state: the reply the probe waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Waiting for the 220 greeting.
    Greeting(ExpectGreeting),
    /// Waiting for the reply to EHLO.
    EhloReply(ExpectEhloReply),
    /// Waiting for the reply to HELO.
    HeloReply(ExpectHeloReply),
    /// Waiting for the reply to STARTTLS.
    StartTlsReply(ExpectStartTlsReply),
    /// Waiting for the reply to EHLO inside TLS.
    EhloAfterTls(ExpectEhloAfterTls),
    /// Waiting for the reply to QUIT.
    QuitReply(ExpectQuitReply),
}

impl State {
    /// The first state of a probe that will introduce itself as `ehlo_name`.
    pub fn start(ehlo_name: EhloName) -> Self {
        Self::Greeting(ExpectGreeting { ehlo_name })
    }

    /// The phase this state is in.
    pub fn phase(&self) -> Phase {
        match self {
            Self::Greeting(_) => Phase::Greeting,
            Self::EhloReply(_) => Phase::Ehlo,
            Self::HeloReply(_) => Phase::Helo,
            Self::StartTlsReply(_) => Phase::Starttls,
            Self::EhloAfterTls(_) => Phase::EhloAfterTls,
            Self::QuitReply(_) => Phase::Quit,
        }
    }

    /// Feeds the reply the server sent in this state.
    pub fn on_reply(self, reply: Reply) -> Step {
        match self {
            Self::Greeting(s) => s.on_reply(reply),
            Self::EhloReply(s) => s.on_reply(reply),
            Self::HeloReply(s) => s.on_reply(reply),
            Self::StartTlsReply(s) => s.on_reply(reply),
            Self::EhloAfterTls(s) => s.on_reply(reply),
            Self::QuitReply(s) => s.on_reply(reply),
        }
    }

    /// The outcome when I/O fails in this state. While waiting for the reply to QUIT the
    /// outcome decided before QUIT stands: a server that drops the connection after QUIT has
    /// done nothing wrong that the probe needs to report.
    pub fn on_failure(self, failure: Failure) -> SmtpOutcome {
        match self {
            Self::QuitReply(s) => s.outcome,
            other => failure_outcome(other.phase(), failure),
        }
    }
}

/// The outcome of an I/O failure in `phase`.
pub fn failure_outcome(phase: Phase, failure: Failure) -> SmtpOutcome {
    match failure {
        Failure::Timeout => SmtpOutcome::Timeout { phase },
        Failure::Closed => SmtpOutcome::ClosedByServer { phase },
        Failure::Reset => SmtpOutcome::ConnectionReset { phase },
        Failure::Io(error) => SmtpOutcome::IoError { phase, error },
        Failure::Malformed(detail) => SmtpOutcome::ProtocolError { phase, detail },
        Failure::Deadline => SmtpOutcome::DeadlineExceeded { phase },
    }
}

/// Checks the cases every state shares: 421 ends the dialogue (RFC 5321 §3.8), and a code
/// outside 2yz–5yz or a 1yz/3yz where none can come is a protocol error.
fn common(phase: Phase, reply: &Reply) -> Option<Step> {
    if reply.code == 421 {
        return Some(Step::Finish(SmtpOutcome::ServiceUnavailable421 {
            phase,
            text: reply.text(),
        }));
    }
    // None of the probe's commands has an intermediate (3yz) or preliminary (1yz) reply.
    if !(2..=5).contains(&reply.class()) || reply.class() == 3 {
        return Some(Step::Finish(unexpected(phase, reply)));
    }
    None
}

fn unexpected(phase: Phase, reply: &Reply) -> SmtpOutcome {
    SmtpOutcome::ProtocolError {
        phase,
        detail: format!("reply {} does not answer {phase}", reply.code),
    }
}

fn quit_then(outcome: SmtpOutcome) -> Step {
    Step::Send {
        command: Command::Quit,
        next: State::QuitReply(ExpectQuitReply { outcome }),
    }
}

fn rejected(phase: Phase, reply: &Reply) -> SmtpOutcome {
    SmtpOutcome::Rejected {
        phase,
        code: reply.code,
        text: reply.text(),
    }
}

/// Waiting for the greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectGreeting {
    ehlo_name: EhloName,
}

impl ExpectGreeting {
    /// 220 → EHLO; 421 → finish; 554 or another 4yz/5yz → QUIT (RFC 5321 §3.1: after a 554
    /// greeting the client waits for and then sends QUIT); any other code → protocol error.
    pub fn on_reply(self, reply: Reply) -> Step {
        if let Some(step) = common(Phase::Greeting, &reply) {
            return step;
        }
        match reply.code {
            220 => Step::Send {
                command: Command::Ehlo(self.ehlo_name.clone()),
                next: State::EhloReply(ExpectEhloReply {
                    ehlo_name: self.ehlo_name,
                }),
            },
            c if c >= 400 => quit_then(rejected(Phase::Greeting, &reply)),
            _ => Step::Finish(unexpected(Phase::Greeting, &reply)),
        }
    }
}

/// Waiting for the reply to EHLO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectEhloReply {
    ehlo_name: EhloName,
}

impl ExpectEhloReply {
    /// 250 with STARTTLS → STARTTLS; 250 without → QUIT, `starttls-not-offered`;
    /// 5yz → HELO (RFC 5321 §4.1.4 and §3.2: a client falls back to HELO when EHLO is refused
    /// as not recognised; not for 421 or other 4yz); 4yz → QUIT, `rejected`.
    pub fn on_reply(self, reply: Reply) -> Step {
        if let Some(step) = common(Phase::Ehlo, &reply) {
            return step;
        }
        match reply.class() {
            2 if reply.code != 250 => Step::Finish(unexpected(Phase::Ehlo, &reply)),
            // RFC 3207 §4 / RFC 8461 §5: STARTTLS must be listed in the EHLO reply.
            2 if reply.has_ehlo_keyword("STARTTLS") => Step::Send {
                command: Command::StartTls,
                next: State::StartTlsReply(ExpectStartTlsReply {
                    ehlo_name: self.ehlo_name,
                }),
            },
            2 => quit_then(SmtpOutcome::StarttlsNotOffered),
            5 => Step::Send {
                command: Command::Helo(self.ehlo_name),
                next: State::HeloReply(ExpectHeloReply {
                    ehlo_code: reply.code,
                    ehlo_text: reply.text(),
                }),
            },
            _ => quit_then(rejected(Phase::Ehlo, &reply)),
        }
    }
}

/// Waiting for the reply to HELO (EHLO was refused with 5yz).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectHeloReply {
    ehlo_code: u16,
    ehlo_text: String,
}

impl ExpectHeloReply {
    /// 250 → QUIT, `ehlo-rejected` (no extensions, so no STARTTLS); 4yz/5yz → QUIT,
    /// `rejected` in the HELO phase.
    pub fn on_reply(self, reply: Reply) -> Step {
        if let Some(step) = common(Phase::Helo, &reply) {
            return step;
        }
        match reply.code {
            250 => quit_then(SmtpOutcome::EhloRejected {
                code: self.ehlo_code,
                text: self.ehlo_text,
            }),
            c if c >= 400 => quit_then(rejected(Phase::Helo, &reply)),
            _ => Step::Finish(unexpected(Phase::Helo, &reply)),
        }
    }
}

/// Waiting for the reply to STARTTLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectStartTlsReply {
    ehlo_name: EhloName,
}

impl ExpectStartTlsReply {
    /// 220 → upgrade (RFC 3207 §4: "220 Ready to start TLS"); 421 → finish; any other
    /// 2yz/4yz/5yz (454, 501, 502 …) → QUIT, `starttls-rejected`: the session stays in
    /// plaintext and the probe goes no further (RFC 8461 §5, RFC 7672 §2.2).
    pub fn on_reply(self, reply: Reply) -> Step {
        if let Some(step) = common(Phase::Starttls, &reply) {
            return step;
        }
        if reply.code == 220 {
            return Step::UpgradeTls(TlsUpgrade {
                ehlo_name: self.ehlo_name,
            });
        }
        quit_then(SmtpOutcome::StarttlsRejected {
            code: reply.code,
            text: reply.text(),
        })
    }
}

/// The TLS handshake the driver performs after a 220 to STARTTLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsUpgrade {
    ehlo_name: EhloName,
}

impl TlsUpgrade {
    /// The handshake succeeded: EHLO again inside TLS (RFC 3207 §4.2: the client MUST discard
    /// what it knew from before TLS and SHOULD send EHLO as the first command).
    pub fn established(self) -> (Command, State) {
        (
            Command::Ehlo(self.ehlo_name),
            State::EhloAfterTls(ExpectEhloAfterTls),
        )
    }

    /// The handshake failed with an I/O failure (timeout, close, reset, deadline).
    pub fn failed(self, failure: Failure) -> SmtpOutcome {
        failure_outcome(Phase::TlsHandshake, failure)
    }
}

/// Waiting for the reply to EHLO inside TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectEhloAfterTls;

impl ExpectEhloAfterTls {
    /// 250 → QUIT, `completed`; 4yz/5yz → QUIT, `rejected` in this phase.
    pub fn on_reply(self, reply: Reply) -> Step {
        if let Some(step) = common(Phase::EhloAfterTls, &reply) {
            return step;
        }
        match reply.code {
            250 => quit_then(SmtpOutcome::Completed),
            c if c >= 400 => quit_then(rejected(Phase::EhloAfterTls, &reply)),
            _ => Step::Finish(unexpected(Phase::EhloAfterTls, &reply)),
        }
    }
}

/// Waiting for the reply to QUIT, the outcome already decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectQuitReply {
    outcome: SmtpOutcome,
}

impl ExpectQuitReply {
    /// Any reply ends the dialogue with the outcome decided before QUIT.
    pub fn on_reply(self, _reply: Reply) -> Step {
        Step::Finish(self.outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> EhloName {
        EhloName::parse("probe.example.net").expect("valid")
    }

    fn r(code: u16, lines: &[&str]) -> Reply {
        Reply::new(code, lines)
    }

    /// Runs the dialogue over scripted replies; `None` stands for a successful TLS handshake.
    /// Returns the commands sent and the final step.
    fn run(script: Vec<Option<Reply>>) -> (Vec<Vec<u8>>, SmtpOutcome) {
        let mut sent = Vec::new();
        let mut state = State::start(name());
        let mut upgrade: Option<TlsUpgrade> = None;
        for item in script {
            let step = match (item, upgrade.take()) {
                (None, Some(up)) => {
                    let (command, next) = up.established();
                    Step::Send { command, next }
                }
                (Some(reply), None) => state.clone().on_reply(reply),
                (item, up) => panic!("script out of step: {item:?} / {up:?}"),
            };
            match step {
                Step::Send { command, next } => {
                    sent.push(command.to_wire());
                    state = next;
                }
                Step::UpgradeTls(up) => upgrade = Some(up),
                Step::Finish(outcome) => return (sent, outcome),
            }
        }
        panic!("dialogue did not finish; sent {sent:?}");
    }

    /// (name, replies in order with `None` for the handshake, commands expected, outcome).
    type Case = (
        &'static str,
        Vec<Option<Reply>>,
        Vec<&'static str>,
        SmtpOutcome,
    );

    fn wire(lines: &[&str]) -> Vec<Vec<u8>> {
        lines
            .iter()
            .map(|l| format!("{l}\r\n").into_bytes())
            .collect()
    }

    #[test]
    fn dialogue_table() {
        let banner = || Some(r(220, &["mx.example.com ESMTP"]));
        let ehlo_tls = || Some(r(250, &["mx.example.com", "PIPELINING", "STARTTLS"]));
        let quit = || Some(r(221, &["bye"]));
        let cases: Vec<Case> = vec![
            (
                "full STARTTLS session",
                vec![
                    banner(),
                    ehlo_tls(),
                    Some(r(220, &["go"])),
                    None,
                    Some(r(250, &["mx"])),
                    quit(),
                ],
                vec![
                    "EHLO probe.example.net",
                    "STARTTLS",
                    "EHLO probe.example.net",
                    "QUIT",
                ],
                SmtpOutcome::Completed,
            ),
            (
                "454 on STARTTLS",
                vec![
                    banner(),
                    ehlo_tls(),
                    Some(r(454, &["TLS not available"])),
                    quit(),
                ],
                vec!["EHLO probe.example.net", "STARTTLS", "QUIT"],
                SmtpOutcome::StarttlsRejected {
                    code: 454,
                    text: "TLS not available".into(),
                },
            ),
            (
                "no STARTTLS in EHLO",
                vec![
                    banner(),
                    Some(r(250, &["mx", "X-STARTTLS", "SIZE 100"])),
                    quit(),
                ],
                vec!["EHLO probe.example.net", "QUIT"],
                SmtpOutcome::StarttlsNotOffered,
            ),
            (
                "EHLO 550 falls back to HELO",
                vec![
                    banner(),
                    Some(r(550, &["no EHLO"])),
                    Some(r(250, &["mx"])),
                    quit(),
                ],
                vec!["EHLO probe.example.net", "HELO probe.example.net", "QUIT"],
                SmtpOutcome::EhloRejected {
                    code: 550,
                    text: "no EHLO".into(),
                },
            ),
            (
                "EHLO and HELO refused",
                vec![
                    banner(),
                    Some(r(502, &["no"])),
                    Some(r(550, &["go away"])),
                    quit(),
                ],
                vec!["EHLO probe.example.net", "HELO probe.example.net", "QUIT"],
                SmtpOutcome::Rejected {
                    phase: Phase::Helo,
                    code: 550,
                    text: "go away".into(),
                },
            ),
            (
                "421 at banner is inconclusive",
                vec![Some(r(421, &["mx busy", "try later"]))],
                vec![],
                SmtpOutcome::ServiceUnavailable421 {
                    phase: Phase::Greeting,
                    text: "mx busy\ntry later".into(),
                },
            ),
            (
                "421 to EHLO does not fall back to HELO",
                vec![banner(), Some(r(421, &["rate limited"]))],
                vec!["EHLO probe.example.net"],
                SmtpOutcome::ServiceUnavailable421 {
                    phase: Phase::Ehlo,
                    text: "rate limited".into(),
                },
            ),
            (
                "451 to EHLO is a rejection, no HELO",
                vec![banner(), Some(r(451, &["later"])), quit()],
                vec!["EHLO probe.example.net", "QUIT"],
                SmtpOutcome::Rejected {
                    phase: Phase::Ehlo,
                    code: 451,
                    text: "later".into(),
                },
            ),
            (
                "421 to STARTTLS",
                vec![banner(), ehlo_tls(), Some(r(421, &["bye"]))],
                vec!["EHLO probe.example.net", "STARTTLS"],
                SmtpOutcome::ServiceUnavailable421 {
                    phase: Phase::Starttls,
                    text: "bye".into(),
                },
            ),
            (
                "554 greeting",
                vec![Some(r(554, &["no SMTP service here"])), quit()],
                vec!["QUIT"],
                SmtpOutcome::Rejected {
                    phase: Phase::Greeting,
                    code: 554,
                    text: "no SMTP service here".into(),
                },
            ),
            (
                "250 as greeting",
                vec![Some(r(250, &["what"]))],
                vec![],
                SmtpOutcome::ProtocolError {
                    phase: Phase::Greeting,
                    detail: "reply 250 does not answer greeting".into(),
                },
            ),
            (
                "354 to EHLO",
                vec![banner(), Some(r(354, &["go on"]))],
                vec!["EHLO probe.example.net"],
                SmtpOutcome::ProtocolError {
                    phase: Phase::Ehlo,
                    detail: "reply 354 does not answer EHLO".into(),
                },
            ),
            (
                "EHLO after TLS refused",
                vec![
                    banner(),
                    ehlo_tls(),
                    Some(r(220, &["go"])),
                    None,
                    Some(r(554, &["no"])),
                    quit(),
                ],
                vec![
                    "EHLO probe.example.net",
                    "STARTTLS",
                    "EHLO probe.example.net",
                    "QUIT",
                ],
                SmtpOutcome::Rejected {
                    phase: Phase::EhloAfterTls,
                    code: 554,
                    text: "no".into(),
                },
            ),
            (
                "QUIT answered with an error keeps the outcome",
                vec![banner(), Some(r(250, &["mx"])), Some(r(500, &["?"]))],
                vec!["EHLO probe.example.net", "QUIT"],
                SmtpOutcome::StarttlsNotOffered,
            ),
        ];
        for (name, script, commands, outcome) in cases {
            let (sent, got) = run(script);
            assert_eq!(got, outcome, "case {name}");
            assert_eq!(sent, wire(&commands), "case {name}");
        }
    }

    #[test]
    fn failures_are_classified_by_phase() {
        let greeting = State::start(name());
        assert_eq!(greeting.phase(), Phase::Greeting);
        assert_eq!(
            greeting.clone().on_failure(Failure::Timeout),
            SmtpOutcome::Timeout {
                phase: Phase::Greeting
            }
        );
        assert_eq!(
            greeting
                .clone()
                .on_failure(Failure::Malformed("bad".into())),
            SmtpOutcome::ProtocolError {
                phase: Phase::Greeting,
                detail: "bad".into()
            }
        );
        let Step::Send { next: ehlo, .. } = greeting.on_reply(r(220, &["mx"])) else {
            panic!("220 leads to EHLO");
        };
        assert_eq!(
            ehlo.clone().on_failure(Failure::Closed),
            SmtpOutcome::ClosedByServer { phase: Phase::Ehlo }
        );
        assert_eq!(
            ehlo.on_failure(Failure::Deadline),
            SmtpOutcome::DeadlineExceeded { phase: Phase::Ehlo }
        );
        let up = TlsUpgrade { ehlo_name: name() };
        assert_eq!(
            up.failed(Failure::Reset),
            SmtpOutcome::ConnectionReset {
                phase: Phase::TlsHandshake
            }
        );
    }

    #[test]
    fn failure_after_quit_keeps_the_decided_outcome() {
        let quit = State::QuitReply(ExpectQuitReply {
            outcome: SmtpOutcome::Completed,
        });
        for failure in [
            Failure::Timeout,
            Failure::Closed,
            Failure::Reset,
            Failure::Deadline,
        ] {
            assert_eq!(quit.clone().on_failure(failure), SmtpOutcome::Completed);
        }
    }

    #[test]
    fn commands_never_include_mail_transactions() {
        let all = [
            Command::Ehlo(name()),
            Command::Helo(name()),
            Command::StartTls,
            Command::Quit,
        ];
        for command in all {
            let line = String::from_utf8(command.to_wire()).expect("ASCII");
            assert!(line.ends_with("\r\n"));
            for verb in ["MAIL", "RCPT", "DATA"] {
                assert!(!line.starts_with(verb), "{line}");
            }
        }
    }
}
