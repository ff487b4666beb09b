//! Changing a running lab between scans.
