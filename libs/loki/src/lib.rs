//! Loki's `query_range` API for sentinel: the client (tenant, headers, basic or bearer
//! authentication, TLS through rustls) and loss-free paging with a checkpoint.

pub mod client;
pub mod pager;
mod wire;

pub use client::{Auth, Client, Direction, Entry, Error, Settings};
pub use pager::{Cursor, PageError, Window, WindowStats, read_window};
