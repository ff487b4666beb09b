//! Certificates (under construction).
