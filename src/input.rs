//! Reading scan targets (being written).
