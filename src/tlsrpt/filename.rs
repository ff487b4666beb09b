//! filename (under construction)
