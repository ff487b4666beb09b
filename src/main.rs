//! The `mxprobe` binary: parse the command line, run the command, map the outcome to an exit
//! status (0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or
//! configuration error, 3 inconclusive, 130 interrupted). The commands live in
//! [`mxprobe::cmd`]; all judgement lives in the library.

use std::process::ExitCode;

use clap::Parser;

use mxprobe::cli::{Cli, Command};
use mxprobe::cmd::{self, App, Outcome};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let app = App::of_process();
    let result = match cli.command {
        Command::Lint(args) => cmd::lint::run(args, &app),
        Command::Scan(args) => cmd::scan::run(args, &app),
        Command::Demo(args) => cmd::demo::run(args, &app),
        Command::Lab(args) => cmd::lab::run(args, &app),
        Command::Queue(command) => cmd::queue::run(command, &app),
        Command::Worker(args) => cmd::worker::run(args, &app),
        Command::Gate(args) => cmd::gate::run(args, &app),
        Command::Generate(args) => cmd::generate::run(args, &app),
        Command::Monitor(args) => cmd::monitor::run(args, &app),
        Command::History(args) => cmd::history::run(args, &app),
        Command::Reports(command) => cmd::reports::run(command, &app),
        Command::Serve(args) => cmd::serve::run(args, &app),
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        // The reader of standard output went away (`| head`): a quiet end.
        Err(err) if cmd::is_broken_pipe(&err) => Outcome::Pass,
        Err(err) => {
            app.note(format_args!("mxprobe: {}", cmd::error_text(&err)));
            Outcome::Error
        }
    };
    outcome.into()
}
