//! `mxprobe lab`: the mail lab kept running on loopback, with the environment that points
//! every command at it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use futures::FutureExt as _;

use super::{App, Outcome, runtime};
use crate::cli::LabArgs;
use mxprobe_lab::{Lab, RunningLab, Scenario};

/// Runs `mxprobe lab`.
pub fn run(args: LabArgs, app: &App) -> anyhow::Result<Outcome> {
    let scenario = Scenario::embedded().context("reading the embedded lab scenario")?;
    if args.list {
        let width = scenario
            .domains
            .iter()
            .map(|d| d.name.as_str().len())
            .max()
            .unwrap_or(0);
        let mut out = app.out();
        for d in &scenario.domains {
            writeln!(out, "{:<width$}  {}", d.name.as_str(), d.about)?;
        }
        return Ok(Outcome::Pass);
    }
    runtime()?.block_on(async {
        // Listening for the signals before anything is printed: a stop that follows the
        // exports at once still removes the directory.
        let mut shutdown = app.shutdown();
        if (&mut shutdown).now_or_never().is_some() {
            return Ok(Outcome::Interrupted);
        }
        let lab = Lab::start(&scenario, app.now())
            .await
            .context("starting the mail lab on loopback")?;
        let dir = LabDir::create(&lab)?;
        {
            let mut out = app.out();
            out.write_all(exports(&lab, &dir.0).as_bytes())?;
            out.flush()?;
        }
        app.close_stdout();
        app.note(format_args!(
            "mxprobe lab: running ({} domains, DNS at {}); stop it with: kill {} (SIGINT or SIGTERM)",
            lab.domains().len(),
            lab.dns().addr,
            std::process::id()
        ));
        shutdown.await;
        drop(lab);
        dir.remove()?;
        app.note("mxprobe lab: stopped");
        Ok(Outcome::Pass)
    })
}

/// The export lines, then the lab domains as a shell comment.
fn exports(lab: &RunningLab, dir: &Path) -> String {
    let smtp = lab.smtp_port().map_or_else(String::new, |p| p.to_string());
    let vars = [
        ("MXPROBE_RESOLVER", lab.dns().addr.to_string()),
        (
            "MXPROBE_TRUST_ANCHOR",
            dir.join(TRUST_ANCHOR).display().to_string(),
        ),
        ("MXPROBE_CA_FILE", dir.join(CA_FILE).display().to_string()),
        ("MXPROBE_SMTP_PORT", smtp),
        ("MXPROBE_HTTPS_PORT", lab.https().addr.port().to_string()),
    ];
    let mut text = String::new();
    for (name, value) in vars {
        text.push_str(&format!("export {name}={}\n", shell_quote(&value)));
    }
    // Not exported: `kill "$MXPROBE_LAB_PID"` stops the lab.
    text.push_str(&format!("MXPROBE_LAB_PID={}\n", std::process::id()));
    let domains: Vec<&str> = lab.domains().iter().map(|d| d.as_str()).collect();
    text.push_str(&format!("# lab domains: {}\n", domains.join(" ")));
    text
}

/// `value` in single quotes when it holds anything but plain characters.
fn shell_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:+=,@".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

const TRUST_ANCHOR: &str = "trust-anchor.txt";
const CA_FILE: &str = "lab-root.pem";

/// The temporary directory of the lab's trust anchor and root certificate; removed on
/// [`LabDir::remove`], or on drop when the run ends otherwise.
struct LabDir(PathBuf);

impl LabDir {
    fn create(lab: &RunningLab) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("mxprobe-lab-{}", std::process::id()));
        std::fs::create_dir(&path)
            .with_context(|| format!("creating the directory {}", path.display()))?;
        let dir = Self(path);
        std::fs::write(
            dir.0.join(TRUST_ANCHOR),
            format!("{}\n", lab.dns().trust_anchor),
        )
        .with_context(|| format!("writing {}", dir.0.join(TRUST_ANCHOR).display()))?;
        std::fs::write(dir.0.join(CA_FILE), lab.root_ca_pem())
            .with_context(|| format!("writing {}", dir.0.join(CA_FILE).display()))?;
        Ok(dir)
    }

    fn remove(self) -> anyhow::Result<()> {
        let path = self.0.clone();
        std::mem::forget(self);
        std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))
    }
}

impl Drop for LabDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_the_shell_when_needed() {
        assert_eq!(shell_quote("127.0.0.1:5353"), "127.0.0.1:5353");
        assert_eq!(
            shell_quote("/tmp/mxprobe-lab-1/x.pem"),
            "/tmp/mxprobe-lab-1/x.pem"
        );
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn list_names_every_lab_domain_with_what_it_shows() {
        let t = crate::cmd::testing::app();
        let args = LabArgs { list: true };
        assert_eq!(run(args, &t.app).unwrap(), Outcome::Pass);
        let text = t.out.text();
        let scenario = Scenario::embedded().unwrap();
        assert_eq!(text.lines().count(), scenario.domains.len());
        let good = text.lines().find(|l| l.starts_with("good.test ")).unwrap();
        let about = &scenario
            .domain(&"good.test".parse().unwrap())
            .unwrap()
            .about;
        assert!(good.ends_with(about.as_str()), "{good}");
    }
}
