//! What the window state asks of a key: hashing, an order, and an 8-byte
//! prefix of that order that lets it sort keys without comparing them
//! whole.

use std::hash::Hash;
use std::rc::Rc;
use std::sync::Arc;

use compact_str::CompactString;

/// A key the window state can hold.
///
/// Keys are hashed (to find a key's state) and ordered (rows leave in
/// canonical order, by key within a window). When a window end fires many
/// keys at once, the state sorts them by [`order_prefix`](Self::order_prefix)
/// first and compares whole keys only where prefixes tie, so for string keys
/// most comparisons are one integer compare instead of a `memcmp` through
/// the key's storage.
///
/// Implemented for strings, byte strings, integers and pairs; a key type of
/// your own needs only `impl WindowKey for MyKey {}` (the default prefix is
/// correct for every order, it just does not help).
pub trait WindowKey: Clone + Ord + Hash {
    /// A prefix of the order: whenever `a < b`, `a.order_prefix() <=
    /// b.order_prefix()`. The default, 0 for every key, always holds.
    #[inline]
    fn order_prefix(&self) -> u64 {
        0
    }
}

/// The first 8 bytes, big-endian, zero-padded: byte-wise lexicographic
/// order (the order of `str` and `[u8]`) never decreases it.
#[inline]
pub fn bytes_prefix(bytes: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let n = bytes.len().min(8);
    head[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(head)
}

macro_rules! string_keys {
    ($($t:ty),*) => {$(
        impl WindowKey for $t {
            #[inline]
            fn order_prefix(&self) -> u64 {
                bytes_prefix(AsRef::<[u8]>::as_ref(&**self))
            }
        }
    )*};
}

string_keys!(
    String,
    CompactString,
    Box<str>,
    Arc<str>,
    Rc<str>,
    Vec<u8>,
    Box<[u8]>
);

impl WindowKey for &str {
    #[inline]
    fn order_prefix(&self) -> u64 {
        bytes_prefix(self.as_bytes())
    }
}

macro_rules! unsigned_keys {
    ($($t:ty),*) => {$(
        impl WindowKey for $t {
            #[inline]
            fn order_prefix(&self) -> u64 {
                *self as u64
            }
        }
    )*};
}

unsigned_keys!(u8, u16, u32, u64, usize);

macro_rules! signed_keys {
    ($($t:ty),*) => {$(
        impl WindowKey for $t {
            #[inline]
            fn order_prefix(&self) -> u64 {
                // Flipping the sign bit maps the signed order onto the
                // unsigned one.
                (*self as i64 as u64) ^ (1 << 63)
            }
        }
    )*};
}

signed_keys!(i8, i16, i32, i64, isize);

impl WindowKey for char {
    #[inline]
    fn order_prefix(&self) -> u64 {
        u64::from(*self)
    }
}

impl WindowKey for bool {
    #[inline]
    fn order_prefix(&self) -> u64 {
        u64::from(*self)
    }
}

impl<A: WindowKey, B: WindowKey> WindowKey for (A, B) {
    /// The first element's prefix: pairs are ordered by it first.
    #[inline]
    fn order_prefix(&self) -> u64 {
        self.0.order_prefix()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn consistent<K: WindowKey>(a: &K, b: &K) -> bool {
        match a.cmp(b) {
            std::cmp::Ordering::Less => a.order_prefix() <= b.order_prefix(),
            std::cmp::Ordering::Greater => a.order_prefix() >= b.order_prefix(),
            std::cmp::Ordering::Equal => a.order_prefix() == b.order_prefix(),
        }
    }

    proptest! {
        /// The prefix never contradicts the order.
        #[test]
        fn prefixes_follow_the_order(
            a in "[a-c\\x00]{0,12}", b in "[a-c\\x00]{0,12}",
            x in any::<i64>(), y in any::<i64>(),
            p in any::<i8>(), q in any::<i8>(),
            u in any::<u32>(), v in any::<u32>(),
        ) {
            prop_assert!(consistent(&a, &b));
            prop_assert!(consistent(&CompactString::from(a.as_str()), &CompactString::from(b.as_str())));
            prop_assert!(consistent(&a.clone().into_bytes(), &b.clone().into_bytes()));
            prop_assert!(consistent(&x, &y));
            prop_assert!(consistent(&p, &q));
            prop_assert!(consistent(&u, &v));
            prop_assert!(consistent(&(x, a.clone()), &(y, b.clone())));
        }
    }
}
