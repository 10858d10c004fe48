//! The server's side: who may ask ([`AccessList`]), how often ([`ClientTable`], which also
//! keeps what interleaved mode needs), the decision on one request ([`ServerCore`]), and
//! sending a batch of answers of which the kernel may refuse any ([`send_all`]).
//! Sans-IO: the daemon's sockets and threads live in `ntp-server`.

mod access;
mod batch;
mod clients;
mod request;

pub use access::{AccessAction, AccessList, AccessRule, Cidr, CidrError};
pub use batch::send_all;
pub use clients::{ClientTable, RateLimit, RateVerdict};
pub use request::{Answer, Counters, DropReason, NtsServing, Request, ServerCore};
