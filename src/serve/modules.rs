//! The modules of `mxprobe serve --config FILE`: named sets of probe options a scrape picks
//! with `module=NAME`, as blackbox_exporter's modules are. The file is TOML, or YAML when its
//! name ends in `.yaml` or `.yml` (the same keys, under `modules:`):
//!
//! ```toml
//! [modules.no_smtp]
//! no_smtp = true
//!
//! [modules.staging]
//! smtp_port = 2525
//! timeout = 20
//! smtp_timeout = 15
//! ```
//!
//! ```yaml
//! modules:
//!   no_smtp:
//!     no_smtp: true
//! ```
//!
//! Each module starts from the command line's probe flags and changes only what it names.
//! Unknown keys are errors (a typo must not silently probe port 25), and so are keys given
//! twice.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use mxprobe_core::evaluate::policy_fetch::ContentTypeRule;
use mxprobe_probe::resolver::IpFamilies;
use mxprobe_probe::scan::ScanConfig;

/// The largest --config file read.
pub const CONFIG_BYTES: usize = 64 * 1024;

/// The most modules one file may define (each keeps a scanner with its own caches).
pub const MAX_MODULES: usize = 64;

/// The name of the module the command-line flags make (also used without `module=`).
pub const DEFAULT_MODULE: &str = "default";

/// Why the --config file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModulesError {
    /// Unreadable or over [`CONFIG_BYTES`].
    #[error("{0}")]
    File(#[from] mxprobe_core::limits::FileError),
    /// Not UTF-8.
    #[error("--config {path}: not UTF-8 text; write the modules in TOML or YAML")]
    NotText {
        /// The file.
        path: String,
    },
    /// Not TOML or YAML of the expected shape (the message names the line and the key).
    #[error("--config {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What the TOML or YAML reader said, with its line and column.
        message: String,
    },
    /// A module name that would not survive a URL or a label.
    #[error("--config {path}: module name {name:?}: use 1 to 64 letters, digits, '_' or '-'")]
    BadName {
        /// The file.
        path: String,
        /// The name.
        name: String,
    },
    /// The reserved name.
    #[error(
        "--config {path}: module name \"default\" is the command line's flags; give the module \
         another name"
    )]
    Reserved {
        /// The file.
        path: String,
    },
    /// Too many modules.
    #[error("--config {path}: {count} modules, at most {MAX_MODULES}")]
    TooMany {
        /// The file.
        path: String,
        /// How many it defines.
        count: usize,
    },
    /// A value out of range.
    #[error("--config {path}: module {name}: {problem}")]
    BadValue {
        /// The file.
        path: String,
        /// The module.
        name: String,
        /// What is wrong and what to write.
        problem: String,
    },
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    modules: BTreeMap<String, ModuleSpec>,
}

/// Which address families of MX hosts a module probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum IpChoice {
    /// IPv4 only.
    #[serde(rename = "4")]
    V4,
    /// IPv6 only.
    #[serde(rename = "6")]
    V6,
    /// Both.
    #[serde(rename = "both")]
    Both,
}

/// One module: what it changes of the command line's probe options.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSpec {
    /// Do not probe SMTP (networks that block port 25).
    pub no_smtp: Option<bool>,
    /// The SMTP port.
    pub smtp_port: Option<u16>,
    /// The HTTPS port of the policy fetch.
    pub https_port: Option<u16>,
    /// The address families of MX hosts.
    pub ip: Option<IpChoice>,
    /// A policy not served as text/plain is invalid.
    pub strict_content_type: Option<bool>,
    /// Seconds one domain's probe may take in all (at most the --deadline).
    pub timeout: Option<f64>,
    /// Seconds one SMTP probe may take in all, connect to QUIT (instead of
    /// --smtp-deadline).
    pub smtp_timeout: Option<f64>,
}

impl ModuleSpec {
    /// `base` changed as this module says; `deadline` is the module's probe deadline.
    pub fn apply(&self, mut base: ScanConfig, deadline: &mut Duration) -> ScanConfig {
        if let Some(no_smtp) = self.no_smtp {
            base.no_smtp = no_smtp;
        }
        if let Some(port) = self.smtp_port {
            base.default_smtp_port = port;
        }
        if let Some(port) = self.https_port {
            base.fetch = base.fetch.with_default_port(port);
        }
        if let Some(ip) = self.ip {
            base.dns.families = match ip {
                IpChoice::V4 => IpFamilies::V4,
                IpChoice::V6 => IpFamilies::V6,
                IpChoice::Both => IpFamilies::Both,
            };
        }
        if let Some(strict) = self.strict_content_type {
            base.content_type = if strict {
                ContentTypeRule::Reject
            } else {
                ContentTypeRule::Warn
            };
        }
        if let Some(timeout) = self.timeout {
            *deadline = (*deadline).min(Duration::from_secs_f64(timeout));
        }
        if let Some(timeout) = self.smtp_timeout {
            base.smtp.deadline = Duration::from_secs_f64(timeout);
        }
        base
    }
}

/// Reads and checks the modules of `path`: YAML when its name ends in `.yaml` or `.yml`,
/// TOML otherwise.
pub fn read(path: &Path) -> Result<BTreeMap<String, ModuleSpec>, ModulesError> {
    let bytes = mxprobe_core::limits::read_capped("--config", path, CONFIG_BYTES)?;
    let shown = path.display().to_string();
    let text = String::from_utf8(bytes).map_err(|_| ModulesError::NotText {
        path: shown.clone(),
    })?;
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    if yaml {
        parse_yaml(&text, &shown)
    } else {
        parse(&text, &shown)
    }
}

/// Parses and checks the modules of a TOML file's text (`path` names it in errors).
pub fn parse(text: &str, path: &str) -> Result<BTreeMap<String, ModuleSpec>, ModulesError> {
    let file: File = toml::from_str(text).map_err(|e| ModulesError::Invalid {
        path: path.to_owned(),
        message: one_line(text, &e),
    })?;
    check(file, path)
}

/// Parses and checks the modules of a YAML file's text (`path` names it in errors): the
/// same keys as in TOML, under `modules:`.
pub fn parse_yaml(text: &str, path: &str) -> Result<BTreeMap<String, ModuleSpec>, ModulesError> {
    // An empty document (or one of comments only) is no modules, as an empty TOML file is.
    // The file is at most CONFIG_BYTES; the reader's budget bounds what aliases could make
    // of it (the schema, all maps and scalars, refuses any other node anyway).
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_aliases: 1_000,
            max_nodes: 20_000,
            max_recorded_anchor_bytes: CONFIG_BYTES,
        },
    };
    let file: Option<File> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| ModulesError::Invalid {
            path: path.to_owned(),
            message: yaml_one_line(&e),
        })?;
    check(
        file.unwrap_or(File {
            modules: BTreeMap::new(),
        }),
        path,
    )
}

/// The modules of a file as read, checked.
fn check(file: File, path: &str) -> Result<BTreeMap<String, ModuleSpec>, ModulesError> {
    if file.modules.len() > MAX_MODULES {
        return Err(ModulesError::TooMany {
            path: path.to_owned(),
            count: file.modules.len(),
        });
    }
    for (name, spec) in &file.modules {
        if name == DEFAULT_MODULE {
            return Err(ModulesError::Reserved {
                path: path.to_owned(),
            });
        }
        if !valid_name(name) {
            return Err(ModulesError::BadName {
                path: path.to_owned(),
                name: name.clone(),
            });
        }
        for (key, seconds) in [
            ("timeout", spec.timeout),
            ("smtp_timeout", spec.smtp_timeout),
        ] {
            if let Some(t) = seconds
                && !(1.0..=3600.0).contains(&t)
            {
                return Err(ModulesError::BadValue {
                    path: path.to_owned(),
                    name: name.clone(),
                    problem: format!("{key} = {t}: give seconds from 1 to 3600"),
                });
            }
        }
        for (key, port) in [
            ("smtp_port", spec.smtp_port),
            ("https_port", spec.https_port),
        ] {
            if port == Some(0) {
                return Err(ModulesError::BadValue {
                    path: path.to_owned(),
                    name: name.clone(),
                    problem: format!("{key} = 0: give a port from 1 to 65535"),
                });
            }
        }
    }
    Ok(file.modules)
}

/// Whether `name` can be a module name: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The YAML reader's message on one line, with the line and column it points at.
fn yaml_one_line(e: &serde_saphyr::Error) -> String {
    let message = e.to_string();
    // The reader's own text is "error: line L column C: what" (then a snippet of the file).
    let first = message.lines().next().unwrap_or_default().trim();
    let first = first.strip_prefix("error:").unwrap_or(first).trim_start();
    let first = match first.split_once(": ") {
        Some((at, rest)) if at.starts_with("line ") => rest,
        _ => first,
    };
    match e.location() {
        Some(at) => format!("line {}, column {}: {first}", at.line(), at.column()),
        None => first.to_owned(),
    }
}

/// The TOML reader's message on one line, with the line and column it points at.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().trim_end_matches('.').replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_read_and_checked() {
        let modules = parse(
            "[modules.no_smtp]\nno_smtp = true\n\n[modules.staging-2]\nsmtp_port = 2525\nip = \"4\"\ntimeout = 20\n",
            "m.toml",
        )
        .unwrap();
        assert_eq!(modules.len(), 2);
        assert_eq!(modules["no_smtp"].no_smtp, Some(true));
        assert_eq!(modules["staging-2"].smtp_port, Some(2525));
        assert_eq!(modules["staging-2"].ip, Some(IpChoice::V4));
        assert!(parse("", "m.toml").unwrap().is_empty());

        for (text, want) in [
            (
                "[modules.a]\nno_smpt = true\n",
                "--config m.toml: line 2, column 1: unknown field `no_smpt`",
            ),
            (
                "[modules.default]\n",
                "--config m.toml: module name \"default\" is the command line's flags",
            ),
            (
                "[modules.\"a b\"]\n",
                "--config m.toml: module name \"a b\": use 1 to 64 letters",
            ),
            (
                "[modules.a]\ntimeout = 0\n",
                "--config m.toml: module a: timeout = 0: give seconds from 1 to 3600",
            ),
            (
                "[modules.a]\nsmtp_timeout = 0.5\n",
                "--config m.toml: module a: smtp_timeout = 0.5: give seconds from 1 to 3600",
            ),
            (
                "[modules.a]\nsmtp_port = 0\n",
                "--config m.toml: module a: smtp_port = 0: give a port",
            ),
            (
                "[module.a]\n",
                "--config m.toml: line 1, column 2: unknown field `module`",
            ),
        ] {
            let err = parse(text, "m.toml").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn yaml_modules_read_as_toml_ones_do() {
        let toml = parse(
            "[modules.no_smtp]\nno_smtp = true\n\n[modules.staging-2]\nsmtp_port = 2525\nip = \"4\"\ntimeout = 20\nsmtp_timeout = 15\n",
            "m.toml",
        )
        .unwrap();
        let yaml = parse_yaml(
            "# comment\nmodules:\n  no_smtp:\n    no_smtp: true\n  staging-2:\n    smtp_port: 2525\n    ip: \"4\"\n    timeout: 20\n    smtp_timeout: 15\n",
            "m.yaml",
        )
        .unwrap();
        assert_eq!(yaml, toml);
        assert!(parse_yaml("", "m.yaml").unwrap().is_empty());
        assert!(parse_yaml("# nothing\n", "m.yaml").unwrap().is_empty());
        assert!(parse_yaml("modules: {}\n", "m.yaml").unwrap().is_empty());

        for (text, want) in [
            (
                "modules:\n  a:\n    no_smpt: true\n",
                "--config m.yaml: line 3, column 5: unknown field `no_smpt`",
            ),
            (
                "modules:\n  default: {}\n",
                "--config m.yaml: module name \"default\" is the command line's flags",
            ),
            (
                "modules:\n  a:\n    smtp_timeout: 0\n",
                "--config m.yaml: module a: smtp_timeout = 0: give seconds from 1 to 3600",
            ),
            (
                "modules:\n  a:\n    smtp_port: 70000\n",
                "--config m.yaml: line 3, column ",
            ),
            ("modules: [\n", "--config m.yaml: line "),
            (
                "modules:\n  a: {}\n  a: {}\n",
                "--config m.yaml: line 3, column 3: duplicate",
            ),
        ] {
            let err = parse_yaml(text, "m.yaml").unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }
}
