//! Output buffers, sized before anything is written into them.

use crate::Error;

/// The first `len` bytes of an output buffer, or [`Error::BufferTooSmall`].
pub(crate) fn output_prefix(buffer: &mut [u8], len: usize) -> Result<&mut [u8], Error> {
    let available = buffer.len();
    buffer.get_mut(..len).ok_or(Error::BufferTooSmall {
        needed: len,
        available,
    })
}
