//! lint (under construction)
