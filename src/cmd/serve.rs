//! `mxprobe serve`: the Prometheus exporter ([`crate::serve`]) on the --listen address until
//! SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::{App, Outcome, runtime};
use crate::cli::ServeArgs;
use crate::config::probe_config;
use crate::serve::modules::{self, DEFAULT_MODULE};
use crate::serve::{Exporter, Module, http, module_sharing};
use mxprobe_probe::scan::{Politeness, ProbeCacheConfig, ScanConfig, Scanner};

/// Why `serve` cannot start (exit status 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A --listen address beyond loopback without --allow-remote.
    #[error(
        "--listen {0}: not a loopback address; anyone who reaches it could make mxprobe \
         connect to mail servers. Add --allow-remote to listen there (behind a firewall or a \
         reverse proxy), or listen on 127.0.0.1"
    )]
    Remote(std::net::SocketAddr),
}

/// Runs `mxprobe serve`.
pub fn run(args: ServeArgs, app: &App) -> anyhow::Result<Outcome> {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        return Err(ServeError::Remote(args.listen).into());
    }
    let specs = match &args.config {
        Some(path) => modules::read(path)?,
        None => BTreeMap::new(),
    };
    let min_interval = Duration::from_secs(args.min_interval);
    let deadline = Duration::from_secs(args.deadline);
    let mut base = probe_config(&args.probe, &app.env)?;
    let politeness = Politeness {
        per_ip: usize::try_from(args.per_ip).unwrap_or(usize::MAX),
        per_ip_rate: args.per_ip_rate,
        ..Politeness::default()
    };
    base.politeness = politeness;
    // SMTP probes are kept no longer than a target's result: a scrape after the interval
    // sees the mail servers as they are now.
    base.probe_cache = ProbeCacheConfig {
        ttl: min_interval,
        ..ProbeCacheConfig::default()
    };
    runtime()?.block_on(async {
        let mut configs: Vec<(String, ScanConfig, Duration)> =
            vec![(DEFAULT_MODULE.to_owned(), base.clone(), deadline)];
        for (name, spec) in &specs {
            let mut module_deadline = deadline;
            let config = spec.apply(base.clone(), &mut module_deadline);
            configs.push((name.clone(), config, module_deadline));
        }
        // One budget per address for every module; probes shared where they come out alike.
        let sharing = module_sharing(
            &configs.iter().map(|(_, c, _)| c).collect::<Vec<_>>(),
            &politeness,
            base.probe_cache,
        );
        let mut modules = BTreeMap::new();
        for ((name, config, deadline), sharing) in configs.into_iter().zip(sharing) {
            let scanner = Scanner::new(config)
                .with_context(|| format!("module {name}: setting up the DNS resolver"))?
                .with_sharing(sharing);
            modules.insert(
                name,
                Module {
                    scanner: Arc::new(scanner),
                    deadline,
                },
            );
        }
        let exporter = Arc::new(Exporter::new(
            modules,
            min_interval,
            args.max_targets as usize,
            args.concurrency as usize,
            app.clock(),
        ));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| {
                format!(
                    "--listen {}: cannot listen there (in use by another program, or not an \
                     address of this host)",
                    args.listen
                )
            })?;
        let addr = listener
            .local_addr()
            .context("reading the address listened on")?;
        app.note(format_args!(
            "mxprobe serve: listening on http://{addr}/ (modules: {}; results kept {} s); \
             stop with SIGINT or SIGTERM",
            exporter.module_names(),
            args.min_interval
        ));
        let shutdown = app.shutdown();
        let grace = Duration::from_secs(args.drain_timeout);
        http::serve(listener, exporter, shutdown, grace).await;
        app.note("mxprobe serve: stopped");
        Ok(Outcome::Pass)
    })
}
