//! Sending a batch of answers when the kernel may refuse any one of them.

/// Sends `items` through `send`, which behaves as sendmmsg(2): it sends a prefix of the
/// slice it is given and returns that prefix's length, stopping at the first datagram it
/// cannot send, and fails the call when that one is the first. A refused datagram
/// (EINVAL for port 0, EPERM from a firewall, ENETUNREACH) therefore costs only itself: it
/// is reported to `refused` and skipped, and the rest still go out, where a loop that
/// stopped at the first error made one datagram silence every later answer of its batch.
///
/// `scratch` holds what `send` writes per datagram of the slice it was given (the
/// daemon: each one's transmit-timestamp id); `sent(k, value)` is told, in order, of
/// each datagram `k` of `items` that left. A call that takes nothing and reports no
/// error ends the batch, the rest counted as refused rather than retried forever.
/// Returns how many were refused.
pub fn send_all<T, X, E>(
    items: &[T],
    scratch: &mut [X],
    mut send: impl FnMut(&[T], &mut [X]) -> Result<usize, E>,
    mut sent: impl FnMut(usize, &X),
    mut refused: impl FnMut(usize, Option<E>),
) -> usize {
    let (mut next, mut refusals) = (0, 0);
    while next < items.len() {
        match send(&items[next..], scratch) {
            Ok(0) => {
                for k in next..items.len() {
                    refused(k, None);
                }
                refusals += items.len() - next;
                break;
            }
            Ok(taken) => {
                let taken = taken.min(items.len() - next).min(scratch.len());
                for (j, value) in scratch.iter().take(taken).enumerate() {
                    sent(next + j, value);
                }
                next += taken;
                if taken == 0 {
                    // No scratch to report into: nothing can be told; stop.
                    refusals += items.len() - next;
                    break;
                }
            }
            Err(e) => {
                refused(next, Some(e));
                refusals += 1;
                next += 1;
            }
        }
    }
    refusals
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// A kernel that refuses the datagrams `bad` names and sends at most `most` a call.
    fn kernel<'a>(
        bad: &'a [bool],
        most: usize,
    ) -> impl FnMut(&[usize], &mut [u32]) -> Result<usize, &'static str> + 'a {
        move |batch, ids| {
            let k = batch
                .iter()
                .take(most.min(ids.len()))
                .position(|&i| bad[i])
                .unwrap_or(batch.len().min(most).min(ids.len()));
            if k == 0 && bad[batch[0]] {
                return Err("EINVAL");
            }
            for (id, &i) in ids.iter_mut().zip(&batch[..k]) {
                *id = i as u32 * 10;
            }
            Ok(k)
        }
    }

    #[test]
    fn one_refused_datagram_costs_only_itself() {
        let items: Vec<usize> = (0..8).collect();
        let bad = [false, false, true, false, false, true, false, false];
        let mut ids = [0u32; 64];
        let mut delivered = Vec::new();
        let mut refused = Vec::new();
        let n = send_all(
            &items,
            &mut ids,
            kernel(&bad, 64),
            |k, id| delivered.push((k, *id)),
            |k, e| refused.push((k, e)),
        );
        assert_eq!(n, 2);
        assert_eq!(refused, [(2, Some("EINVAL")), (5, Some("EINVAL"))]);
        let ks: Vec<usize> = delivered.iter().map(|d| d.0).collect();
        assert_eq!(ks, [0, 1, 3, 4, 6, 7]);
        assert!(delivered.iter().all(|&(k, id)| id == k as u32 * 10));
    }

    proptest! {
        /// Whatever the kernel refuses and however few it takes a call, every datagram is
        /// either delivered or refused, exactly once and in order, and only the bad ones
        /// are refused.
        #[test]
        fn every_datagram_is_delivered_or_refused_once(
            bad in proptest::collection::vec(any::<bool>(), 0..70),
            most in 1usize..70,
        ) {
            let items: Vec<usize> = (0..bad.len()).collect();
            let mut ids = [0u32; 64];
            let seen = core::cell::RefCell::new(Vec::new());
            let refused = send_all(
                &items,
                &mut ids,
                kernel(&bad, most),
                |k, id| {
                    assert_eq!(*id, k as u32 * 10);
                    seen.borrow_mut().push((k, true));
                },
                |k, _| seen.borrow_mut().push((k, false)),
            );
            let seen = seen.into_inner();
            prop_assert_eq!(refused, bad.iter().filter(|b| **b).count());
            let order: Vec<usize> = seen.iter().map(|s| s.0).collect();
            prop_assert_eq!(order, items.clone());
            for (k, ok) in seen {
                prop_assert_eq!(ok, !bad[k]);
            }
        }
    }
}
