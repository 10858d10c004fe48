//! Reading fixed-size fields from input, and output buffers sized before anything is
//! written into them.

use crate::Error;

/// Reads `N` bytes at `offset`, or says what was missing.
pub(crate) fn read_array<const N: usize>(
    bytes: &[u8],
    offset: usize,
    what: &'static str,
) -> Result<[u8; N], Error> {
    bytes
        .get(offset..offset + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::Truncated {
            what,
            offset,
            needed: N,
            available: bytes.len().saturating_sub(offset),
        })
}

/// The first `len` bytes of an output buffer, or [`Error::BufferTooSmall`].
pub(crate) fn output_prefix(buffer: &mut [u8], len: usize) -> Result<&mut [u8], Error> {
    let available = buffer.len();
    buffer.get_mut(..len).ok_or(Error::BufferTooSmall {
        needed: len,
        available,
    })
}
