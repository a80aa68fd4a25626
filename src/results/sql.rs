//! Portable SQL text for aggregation: it lives with the storage code, in [`crate::db::sql`].

pub use crate::db::sql::*;
