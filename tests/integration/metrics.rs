//! The scheduling examples in `fixtures/monitoring/`: the systemd service and timer pass
//! `systemd-analyze verify` and say what docs/monitoring.md promises, and the crontab line
//! is valid cron syntax running the same command as the service.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::Command;

const SERVICE: &str = "mxprobe-monitor.service";
const TIMER: &str = "mxprobe-monitor.timer";
/// The command both examples run (the binary at its installed path).
const COMMAND: &str = "/usr/local/bin/mxprobe monitor --db /var/lib/mxprobe/history.sqlite \
                       --input /etc/mxprobe/domains.csv \
                       --prometheus /var/lib/node_exporter/textfile/mxprobe.prom";
const INSTALLED_BINARY: &str = "/usr/local/bin/mxprobe";

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/monitoring/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("mxprobe-monitoring-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- systemd ----------------------------------------------------------------------------

/// A unit file's settings: section → key → values in order (a key may repeat).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Reads a unit file as systemd does: `[Section]` headers, `Key=Value` lines, `#` and `;`
/// comments, a trailing backslash continuing the line.
fn parse_unit(text: &str) -> Result<Unit, String> {
    let mut unit = Unit::new();
    let mut section: Option<String> = None;
    let mut pending = String::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if pending.is_empty() && (raw.starts_with('#') || raw.starts_with(';')) {
            continue;
        }
        if let Some(head) = raw.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        let line = format!("{pending}{raw}");
        pending.clear();
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_owned());
            unit.entry(name.to_owned()).or_default();
            continue;
        }
        let Some(section) = &section else {
            return Err(format!("line {n}: a setting before any [Section]"));
        };
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {n}: not Key=Value: {line:?}"))?;
        unit.get_mut(section)
            .expect("the section was inserted with its header")
            .entry(key.trim().to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    if !pending.is_empty() {
        return Err("the last line ends with a backslash".to_owned());
    }
    Ok(unit)
}

fn one<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    match unit
        .get(section)
        .and_then(|s| s.get(key))
        .map(Vec::as_slice)
    {
        Some([value]) => value,
        other => panic!("[{section}] {key}: expected one value, found {other:?}"),
    }
}

#[test]
fn the_service_and_timer_run_the_monitor_hourly_with_hardening() {
    let service = parse_unit(&fixture(SERVICE)).unwrap();
    let timer = parse_unit(&fixture(TIMER)).unwrap();

    for (key, want) in [
        ("Type", "oneshot"),
        ("ExecStart", COMMAND),
        ("EnvironmentFile", "-/etc/mxprobe/env"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "mxprobe"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/lib/node_exporter/textfile"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("UMask", "0022"),
    ] {
        assert_eq!(one(&service, "Service", key), want, "[Service] {key}");
    }
    // The files the command writes are where the sandbox lets it write.
    assert!(COMMAND.contains(" --db /var/lib/mxprobe/"));
    assert!(COMMAND.contains(" --prometheus /var/lib/node_exporter/textfile/"));
    assert!(
        !service.contains_key("Install"),
        "the timer starts the service"
    );

    for (key, want) in [
        ("OnCalendar", "hourly"),
        ("RandomizedDelaySec", "10m"),
        ("Persistent", "true"),
        ("Unit", SERVICE),
    ] {
        assert_eq!(one(&timer, "Timer", key), want, "[Timer] {key}");
    }
    assert_eq!(one(&timer, "Install", "WantedBy"), "timers.target");

    assert_eq!(
        parse_unit("Type=oneshot\n"),
        Err("line 1: a setting before any [Section]".to_owned())
    );
    assert_eq!(
        parse_unit("[Service]\nExecStart\n"),
        Err("line 2: not Key=Value: \"ExecStart\"".to_owned())
    );
    let continued = parse_unit("[Service]\n# c\nExecStart=/bin/a \\\n  -b\n").unwrap();
    assert_eq!(one(&continued, "Service", "ExecStart"), "/bin/a    -b");
}

#[test]
fn systemd_analyze_verifies_the_service_and_timer() {
    let service_text = fixture(SERVICE);
    assert_eq!(
        service_text.matches(INSTALLED_BINARY).count(),
        1,
        "the binary appears once, in ExecStart"
    );
    // verify checks that ExecStart's binary exists: point it at the one just built.
    let dir = temp_dir("systemd");
    let service = dir.join(SERVICE);
    let timer = dir.join(TIMER);
    std::fs::write(
        &service,
        service_text.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_mxprobe")),
    )
    .unwrap();
    std::fs::write(&timer, fixture(TIMER)).unwrap();

    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&service)
        .arg(&timer)
        .current_dir(&dir)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("systemd-analyze is not installed: the unit files were not verified");
            return;
        }
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(SERVICE) || l.contains(TIMER))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn systemd_analyze_complaints_are_caught() {
    // The check above would notice a mistake: verify names the file and line.
    let dir = temp_dir("systemd-bad");
    let service = dir.join(SERVICE);
    std::fs::write(
        &service,
        fixture(SERVICE)
            .replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_mxprobe"))
            .replace("ProtectHome=yes", "ProtectHome=sometimes"),
    )
    .unwrap();
    let out = match Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&service)
        .current_dir(&dir)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("systemd-analyze is not installed: the unit files were not verified");
            return;
        }
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(SERVICE) && l.contains("sometimes")),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- cron -------------------------------------------------------------------------------

/// One crontab entry: five time fields and a command.
#[derive(Debug, PartialEq, Eq)]
struct CronEntry {
    fields: [String; 5],
    command: String,
}

/// The fields of a user crontab line: name, lowest and highest value, and value names.
const CRON_FIELDS: [(&str, u32, u32, &[&str]); 5] = [
    ("minute", 0, 59, &[]),
    ("hour", 0, 23, &[]),
    ("day of month", 1, 31, &[]),
    (
        "month",
        1,
        12,
        &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    ),
    (
        "day of week",
        0,
        7,
        &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    ),
];

/// Parses a user crontab (crontab(5)): blank lines, `#` comments and `NAME=value`
/// environment lines are allowed; every other line is five time fields and a command. A `%`
/// in the command must be escaped (cron turns `%` into a line break).
fn parse_crontab(text: &str) -> Result<Vec<CronEntry>, String> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((name, _)) = line.split_once('=')
            && !name.trim().is_empty()
            && name
                .trim()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !first.starts_with(|c: char| c.is_ascii_digit() || c == '*')
        {
            continue;
        }
        if first.starts_with('@') {
            return Err(format!("line {n}: use five time fields, not {first}"));
        }
        let mut rest = line;
        let mut fields: Vec<String> = Vec::new();
        for (name, low, high, names) in CRON_FIELDS {
            let (field, after) = rest
                .split_once([' ', '\t'])
                .ok_or_else(|| format!("line {n}: no {name} field or no command"))?;
            check_cron_field(field, low, high, names)
                .map_err(|e| format!("line {n}: {name}: {e}"))?;
            fields.push(field.to_owned());
            rest = after.trim_start_matches([' ', '\t']);
        }
        if rest.is_empty() {
            return Err(format!("line {n}: no command"));
        }
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '%' => return Err(format!("line {n}: an unescaped % in the command")),
                _ => {}
            }
        }
        entries.push(CronEntry {
            fields: fields.try_into().expect("five fields were pushed"),
            command: rest.to_owned(),
        });
    }
    Ok(entries)
}

/// `*`, a value, a range `a-b` or a list of those, each optionally with `/step`.
fn check_cron_field(field: &str, low: u32, high: u32, names: &[&str]) -> Result<(), String> {
    let value = |v: &str| -> Result<u32, String> {
        if let Some(pos) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            // Month names count from 1, day names from 0.
            return Ok(pos as u32 + low);
        }
        let number: u32 = v.parse().map_err(|_| format!("{v:?} is not a value"))?;
        if (low..=high).contains(&number) {
            Ok(number)
        } else {
            Err(format!("{number} is outside {low}-{high}"))
        }
    };
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step {
            let step: u32 = step
                .parse()
                .map_err(|_| format!("{step:?} is not a step"))?;
            if step == 0 || step > high {
                return Err(format!("step {step} is outside 1-{high}"));
            }
        }
        if range == "*" {
            continue;
        }
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (value(a)?, value(b)?);
                if a > b {
                    return Err(format!("range {range} runs backwards"));
                }
            }
            None => {
                value(range)?;
                if step.is_some() {
                    return Err(format!("{item}: a step needs * or a range"));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn the_crontab_runs_the_same_command_hourly() {
    let entries = parse_crontab(&fixture("crontab")).unwrap();
    let [entry] = entries.as_slice() else {
        panic!("expected one entry, found {entries:?}");
    };
    // Once an hour: one fixed minute, every hour, every day.
    let minute: u32 = entry.fields[0].parse().unwrap();
    assert!(minute < 60);
    assert_eq!(entry.fields[1..], ["*", "*", "*", "*"]);
    assert_eq!(
        entry.command,
        format!("{COMMAND} >> /var/log/mxprobe/monitor.log 2>&1")
    );
}

#[test]
fn the_crontab_parser_rejects_bad_lines() {
    assert_eq!(
        parse_crontab("# c\nMAILTO=root\n\n5 1-3,*/2 * jan-mar mon,5 /bin/x\n").unwrap(),
        vec![CronEntry {
            fields: ["5", "1-3,*/2", "*", "jan-mar", "mon,5"].map(str::to_owned),
            command: "/bin/x".to_owned(),
        }]
    );
    assert_eq!(
        parse_crontab("0 0 * * * date +\\%F\n").unwrap()[0].command,
        "date +\\%F"
    );
    for (line, want) in [
        ("60 * * * * x", "line 1: minute: 60 is outside 0-59"),
        ("* 24 * * * x", "line 1: hour: 24 is outside 0-23"),
        ("* * 0 * * x", "line 1: day of month: 0 is outside 1-31"),
        ("* * * foo * x", "line 1: month: \"foo\" is not a value"),
        ("* * * * 8 x", "line 1: day of week: 8 is outside 0-7"),
        ("*/0 * * * * x", "line 1: minute: step 0 is outside 1-59"),
        (
            "5/2 * * * * x",
            "line 1: minute: 5/2: a step needs * or a range",
        ),
        ("9-3 * * * * x", "line 1: minute: range 9-3 runs backwards"),
        ("* * * * *", "line 1: no day of week field or no command"),
        ("* * * * x y", "line 1: day of week: \"x\" is not a value"),
        (
            "0 0 * * * date +%F",
            "line 1: an unescaped % in the command",
        ),
        ("@hourly x", "line 1: use five time fields, not @hourly"),
    ] {
        assert_eq!(parse_crontab(line), Err(want.to_owned()), "{line}");
    }
}

/// The command the service and the crontab run is one mxprobe accepts: clap rejects an
/// unknown flag before it reaches `--help`, so the help printing proves every flag exists.
#[test]
fn the_scheduled_command_uses_only_real_flags() {
    let args: Vec<&str> = COMMAND.split_whitespace().skip(1).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_mxprobe"))
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("--prometheus"));
    let bad = Command::new(env!("CARGO_BIN_EXE_mxprobe"))
        .args(["monitor", "--no-such-flag", "--help"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
