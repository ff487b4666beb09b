//! mxprobe's integration tests: one binary, one module per topic.

// The shared vectors (RFC text and peers' test suites) run through the public parsers.
mod vectors;
// Real TLS-RPT reports read back; reports we write checked against RFC 8460 §4.4.
mod reports;
// Certificate and DANE matrix built with rcgen.
mod certs;
// The `mxprobe` binary: flags, output shapes, exit codes.
mod cli;
