//! The caps on files named on the command line, and the one bounded read they go through.
//!
//! A file flag may name anything: a FIFO, `/dev/zero`, a log file given by mistake. Each is
//! read with [`read_capped`], which reads at most its cap plus one byte, whatever the file
//! claims to be, and names the flag, the file and the cap when there is more. `docs/limits.md`
//! lists every cap and timeout of mxprobe; the caps on what the network sends live with
//! their readers (the policy fetch, the SMTP reply parser, the report reader).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::mtasts::MAX_POLICY_BYTES;

/// `lint --policy` and `gate --policy-file`: the policy fetch's own cap (a policy is a few
/// lines; senders read no more than this either).
pub const POLICY_FILE_BYTES: usize = MAX_POLICY_BYTES;

/// `--ca-file` and `SSL_CERT_FILE`: a CA bundle (Mozilla's whole set is about 220 KB as PEM).
pub const CA_FILE_BYTES: usize = 4 * 1024 * 1024;

/// `--trust-anchor`: DNSKEY records for the root or a test zone (a few hundred bytes each).
pub const TRUST_ANCHOR_BYTES: usize = 64 * 1024;

/// `lint` and `gate` `--sts-txt` / `--tlsrpt-txt`: a TXT record's data cannot be longer
/// (RFC 1035 §3.3: RDLENGTH is 16 bits; §3.3.14: TXT is character-strings within it).
pub const TXT_VALUE_BYTES: usize = 65_535;

/// A file flag whose file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Opening or reading failed.
    #[error("{flag} {path}: {source}")]
    Read {
        /// The flag (or variable) that named the file.
        flag: &'static str,
        /// The file as given.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file holds more than the flag's cap.
    #[error(
        "{flag} {path}: larger than {} (the cap for {flag}); is this the right file?",
        size_text(*.cap)
    )]
    TooLarge {
        /// The flag (or variable) that named the file.
        flag: &'static str,
        /// The file as given.
        path: PathBuf,
        /// The cap in bytes.
        cap: usize,
    },
}

/// A size for people: bytes, KiB or MiB, whichever is whole.
pub fn size_text(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads the file `flag` names, at most `cap` bytes; more is [`FileError::TooLarge`].
/// `-` is not special here: callers that accept standard input use [`read_capped_from`].
pub fn read_capped(flag: &'static str, path: &Path, cap: usize) -> Result<Vec<u8>, FileError> {
    let read_error = |source| FileError::Read {
        flag,
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    read_capped_from(file, cap).map_err(|e| match e {
        CappedReadError::Io(source) => read_error(source),
        CappedReadError::TooLarge => FileError::TooLarge {
            flag,
            path: path.to_owned(),
            cap,
        },
    })
}

/// Why [`read_capped_from`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum CappedReadError {
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// There was more than the cap.
    #[error("more than the cap")]
    TooLarge,
}

/// Reads `reader` to its end, at most `cap` bytes; a byte more is
/// [`CappedReadError::TooLarge`], and nothing beyond it is read.
pub fn read_capped_from(reader: impl Read, cap: usize) -> Result<Vec<u8>, CappedReadError> {
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    reader.take(limit).read_to_end(&mut bytes)?;
    if bytes.len() > cap {
        return Err(CappedReadError::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_cap_and_not_a_byte_more() {
        assert_eq!(read_capped_from(&b"abc"[..], 3).unwrap(), b"abc");
        assert!(matches!(
            read_capped_from(&b"abcd"[..], 3),
            Err(CappedReadError::TooLarge)
        ));
        // An endless reader stops at the cap.
        let endless = io::repeat(0);
        assert!(matches!(
            read_capped_from(endless, 1024),
            Err(CappedReadError::TooLarge)
        ));
        let err = read_capped("--ca-file", Path::new("/dev/zero"), CA_FILE_BYTES).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--ca-file /dev/zero: larger than 4 MiB (the cap for --ca-file); is this the right \
             file?"
        );
        let err = read_capped("--ca-file", Path::new("/nonexistent/x.pem"), 10).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--ca-file /nonexistent/x.pem: "),
            "{err}"
        );
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(size_text(65_536), "64 KiB");
        assert_eq!(size_text(4 * 1024 * 1024), "4 MiB");
        assert_eq!(size_text(65_535), "65535 bytes");
    }
}
