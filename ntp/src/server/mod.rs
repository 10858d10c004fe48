//! The server's side: who may ask ([`AccessList`]), how often ([`ClientTable`], which also
//! keeps what interleaved mode needs), and the decision on one request ([`ServerCore`]).
//! Sans-IO: the daemon's sockets, threads and batches live in `ntp-server`.

mod access;
mod clients;
mod request;

pub use access::{AccessAction, AccessList, AccessRule, Cidr, CidrError};
pub use clients::{ClientTable, RateLimit, RateVerdict};
pub use request::{Answer, Counters, DropReason, Request, ServerCore};
