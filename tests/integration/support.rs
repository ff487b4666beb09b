//! Shared test helpers: a test certificate authority with fixed validity windows, and the
//! skip-or-fail rule of the tests that need a real server.

use mxprobe_core::tls::Anchors;
use mxprobe_testpki::{CertAuthority, Issued, KeyKind, LeafSpec, Validity};
use rustls_pki_types::CertificateDer;
use time::macros::datetime;

/// 2020 to 2035: the CA certificates' window.
pub(crate) fn ca_window() -> Validity {
    Validity::new(
        datetime!(2020-01-01 0:00 UTC),
        datetime!(2035-01-01 0:00 UTC),
    )
}

/// 2025: the window of a leaf that is valid at the tests' fixed "now" (mid-2025).
pub(crate) fn leaf_window() -> Validity {
    Validity::new(
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-01-01 0:00 UTC),
    )
}

/// A test CA that issues leaves, and the anchors that trust it.
pub(crate) struct TestPki {
    /// The issuing CA (the root itself, or an intermediate under it).
    pub(crate) ca: CertAuthority,
    /// Trusts the root.
    pub(crate) anchors: Anchors,
}

impl TestPki {
    /// A root that issues leaves itself.
    pub(crate) fn root(name: &str) -> Self {
        let ca = CertAuthority::root(name, ca_window(), KeyKind::EcdsaP256).unwrap();
        let anchors = Anchors::from_pem(ca.cert().pem().as_bytes()).unwrap();
        Self { ca, anchors }
    }

    /// A root and an intermediate under it that issues leaves, so chains have two entries.
    pub(crate) fn with_intermediate(name: &str) -> Self {
        let root = Self::root(name);
        let ca = root
            .ca
            .intermediate(
                &format!("{name} Intermediate"),
                ca_window(),
                KeyKind::EcdsaP256,
            )
            .unwrap();
        Self {
            ca,
            anchors: root.anchors,
        }
    }

    /// A leaf for `names`, valid during `validity`.
    pub(crate) fn leaf(&self, names: &[&str], validity: Validity) -> Issued {
        self.ca.leaf(&LeafSpec::new(names, validity)).unwrap()
    }

    /// The chain a server would present for a leaf (leaf first).
    pub(crate) fn chain(&self, leaf: &Issued) -> Vec<CertificateDer<'static>> {
        self.ca.chain_for(leaf)
    }

    /// A chain for a leaf valid in [`leaf_window`], as DER bytes (what the fetcher records).
    pub(crate) fn der_chain(&self, names: &[&str]) -> Vec<Vec<u8>> {
        let leaf = self.leaf(names, leaf_window());
        self.chain(&leaf)
            .into_iter()
            .map(|c| c.as_ref().to_vec())
            .collect()
    }
}

/// A running lab (its own tokio runtime), a scratch directory, and the `MXPROBE_*`
/// environment that points the `mxprobe` binary at the lab, as a CI job or a cron entry would
/// set it for a staging setup: resolver, DNSSEC trust anchor, lab CA, SMTP and HTTPS ports,
/// EHLO name and a history database in the scratch directory.
pub(crate) struct LabEnv {
    pub(crate) lab: mxprobe_lab::RunningLab,
    /// Keeps the lab (and whatever else a test starts on it) serving.
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) dir: std::path::PathBuf,
    pub(crate) env: std::collections::BTreeMap<&'static str, String>,
}

impl LabEnv {
    /// Starts the embedded scenario, with certificates relative to the real clock.
    pub(crate) fn start(tag: &str) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let lab = rt
            .block_on(mxprobe_lab::Lab::start(
                &mxprobe_lab::Scenario::embedded().unwrap(),
                time::OffsetDateTime::now_utc(),
            ))
            .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "mxprobe-{tag}-{}-{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let anchor = dir.join("trust-anchor.txt");
        std::fs::write(&anchor, format!("{}\n", lab.dns().trust_anchor)).unwrap();
        let ca = dir.join("lab-root.pem");
        std::fs::write(&ca, lab.root_ca_pem()).unwrap();
        let env = std::collections::BTreeMap::from([
            ("MXPROBE_RESOLVER", lab.dns().addr.to_string()),
            ("MXPROBE_TRUST_ANCHOR", anchor.display().to_string()),
            ("MXPROBE_CA_FILE", ca.display().to_string()),
            (
                "MXPROBE_SMTP_PORT",
                lab.smtp_port()
                    .expect("the lab has SMTP servers")
                    .to_string(),
            ),
            ("MXPROBE_HTTPS_PORT", lab.https().addr.port().to_string()),
            ("MXPROBE_EHLO_NAME", "probe.mxprobe.test".to_owned()),
            (
                "MXPROBE_DB",
                dir.join("history.sqlite").display().to_string(),
            ),
        ]);
        Self { lab, rt, dir, env }
    }

    /// The `mxprobe` binary, run in the scratch directory with the lab's environment (and
    /// nothing of the caller's that would change its behaviour).
    pub(crate) fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mxprobe"));
        c.current_dir(&self.dir)
            .envs(&self.env)
            .env("NO_COLOR", "1")
            .env_remove("SSL_CERT_FILE")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("MXPROBE_WEBHOOK_URL");
        c
    }

    /// Writes `text` to `name` in the scratch directory.
    pub(crate) fn write(&self, name: &str, text: &str) -> std::path::PathBuf {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for LabEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `command` (its program, arguments, environment and directory) run under `prlimit` with
/// its data segment (heap and private writable mappings, RLIMIT_DATA) limited to `bytes`:
/// an allocation past the limit fails, and the process aborts instead of growing.
/// `prlimit` comes with util-linux, which every Debian system has.
pub(crate) fn under_memory_limit(
    command: &std::process::Command,
    bytes: u64,
) -> std::process::Command {
    let found = std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "prlimit (util-linux) is needed to run a command under a memory limit"
    );
    let mut limited = std::process::Command::new("prlimit");
    limited
        .arg(format!("--data={bytes}"))
        .arg("--")
        .arg(command.get_program())
        .args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => limited.env(name, value),
            None => limited.env_remove(name),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        limited.current_dir(dir);
    }
    limited
}

/// Whether the environment says this is a CI run (`CI` set to anything but empty, `0` or
/// `false`), where a test that cannot find its real server must fail, not skip.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        !v.is_empty() && v != "0" && v != "false"
    })
}

/// Skips the calling test with `reason` and `remedy` (what to install) on stderr, or fails
/// it under CI. Written to the process's stderr directly, not with `eprintln!`, which the
/// test harness captures and hides for a passing test: a skip must be seen.
pub(crate) fn cannot_run(test: &str, reason: &str, remedy: &str) {
    assert!(
        !in_ci(),
        "{test}: cannot run: {reason}. CI is set, so this is a failure, not a skip: {remedy}"
    );
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr().lock(),
        format_args!("skipping {test}: {reason} ({remedy})\n"),
    );
}
