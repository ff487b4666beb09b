//! RFC 8461 MTA-STS (under construction).
