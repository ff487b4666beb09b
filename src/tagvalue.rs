//! tagvalue (under construction)
