//! Sharing beyond one process: the seams through which several scanners (the workers of a
//! distributed scan, each in its own process) keep one politeness budget per address and make
//! one probe per (MX host, SNI, address) between them.
//!
//! A [`Scanner`] alone needs neither: its politeness gates ([`Politeness`]) and its single
//! flight of probes are in-process, and that is the default. [`Scanner::with_sharing`] adds
//! a [`Sharing`]; the scanner then asks [`AddressSlots`] for a connection slot (after its own
//! gate, which still bounds the connections of this process) and asks [`ProbeExchange`] for a
//! probe that its own single flight does not already have. `mxprobe-queue` keeps both in
//! Redis; [`super::LocalSlots`] and [`super::LocalProbes`] keep them in this process, for
//! scanners with different options side by side (the modules of `mxprobe serve`). This
//! module has no I/O.

use std::any::Any;

use futures::future::BoxFuture;

use super::*;

/// A connection slot at one address, held until dropped (dropping gives it back).
pub struct SlotGuard {
    _held: Box<dyn Any + Send + Sync>,
}

impl SlotGuard {
    /// A slot whose release is whatever dropping `held` does.
    pub fn new(held: impl Any + Send + Sync) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

impl fmt::Debug for SlotGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SlotGuard")
    }
}

/// Connection slots shared with other scanners: at most [`Politeness::per_ip`] simultaneous
/// SMTP connections to one address, and at most [`Politeness::per_ip_rate`] new ones a
/// second, counted across every scanner that shares the same slots.
pub trait AddressSlots: Send + Sync {
    /// Waits until a new connection to `ip` is allowed; the slot is held until the returned
    /// guard is dropped. It never fails: an implementation that cannot reach its store keeps
    /// retrying (the domain's deadline bounds the wait).
    fn acquire(&self, ip: IpAddr) -> BoxFuture<'_, SlotGuard>;
}

/// What a probe is made of: the MX host, the name sent as SNI, the address and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    /// The MX host name.
    pub mx: DomainName,
    /// The SNI sent.
    pub sni: DomainName,
    /// The address.
    pub ip: IpAddr,
    /// The SMTP port.
    pub port: u16,
}

/// Probes shared with other scanners: one scanner makes the probe of a key while the others
/// wait for its result, which is kept for the others for a while.
pub trait ProbeExchange: Send + Sync {
    /// The probe of `key`: a result another scanner stored, or `probe` run here (while the
    /// others wait) and then stored. The flag says whether `probe` ran here.
    fn probe<'a>(
        &'a self,
        key: &'a ProbeKey,
        probe: BoxFuture<'a, SmtpFacts>,
    ) -> BoxFuture<'a, (SmtpFacts, bool)>;
}

/// What a scanner shares with other scanners (see the module documentation).
#[derive(Clone, Default)]
pub struct Sharing {
    /// Connection slots per address; `None`: this process's gates only.
    pub slots: Option<Arc<dyn AddressSlots>>,
    /// Probes; `None`: this process's single flight only.
    pub probes: Option<Arc<dyn ProbeExchange>>,
}

impl fmt::Debug for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sharing")
            .field("slots", &self.slots.is_some())
            .field("probes", &self.probes.is_some())
            .finish()
    }
}
