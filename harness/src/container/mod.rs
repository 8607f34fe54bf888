//! isobench's container launcher.
