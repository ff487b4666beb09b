//! dane (under construction)
