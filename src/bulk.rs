//! Bulk scans (being written).
