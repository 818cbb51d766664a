//! Where a received packet's bytes are: an mbuf on the worker, a plain buffer in tests.

use crate::dpdk::Mbuf;

/// A received packet's bytes, whatever holds them (an mbuf, or a buffer in tests).
pub trait PacketBuffer {
    fn bytes(&mut self) -> &mut [u8];
    /// Spans several segments (dropped as unsupported).
    fn is_chained(&self) -> bool {
        false
    }
    /// Brings the packet's first cache line in.
    fn prefetch(&self) {}
    /// Whether the device checked the IPv4 header checksum and found it right.
    fn ip_checksum_good(&self) -> bool {
        false
    }
    /// Makes room for `n` bytes in front of the packet; false if there is none.
    fn prepend(&mut self, n: usize) -> bool;
    /// Shortens the packet to `len` bytes; false if it is not that long.
    fn truncate(&mut self, len: usize) -> bool;
    /// A new packet buffer of the same kind (an mbuf of the same pool) of `len` bytes (left
    /// as they were: the caller writes them); None when none is free or `len` does not fit.
    fn sibling(&self, len: usize) -> Option<Self>
    where
        Self: Sized;
}

impl PacketBuffer for Option<Mbuf> {
    #[inline]
    fn bytes(&mut self) -> &mut [u8] {
        match self {
            Some(m) => m.data_mut(),
            None => &mut [],
        }
    }

    #[inline]
    fn is_chained(&self) -> bool {
        self.as_ref().is_some_and(Mbuf::is_chained)
    }

    #[inline]
    fn prefetch(&self) {
        if let Some(m) = self {
            m.prefetch();
        }
    }

    #[inline]
    fn ip_checksum_good(&self) -> bool {
        self.as_ref().is_some_and(Mbuf::ip_checksum_good)
    }

    fn prepend(&mut self, n: usize) -> bool {
        self.as_mut().is_some_and(|m| m.prepend(n))
    }

    fn truncate(&mut self, len: usize) -> bool {
        self.as_mut()
            .is_some_and(|m| len <= m.len() && m.set_len(len))
    }

    fn sibling(&self, len: usize) -> Option<Self> {
        let mut m = self.as_ref()?.sibling()?;
        m.set_len(len).then_some(Some(m))
    }
}

impl PacketBuffer for Vec<u8> {
    fn bytes(&mut self) -> &mut [u8] {
        self
    }

    fn prepend(&mut self, n: usize) -> bool {
        self.splice(0..0, std::iter::repeat(0).take(n));
        true
    }

    fn truncate(&mut self, len: usize) -> bool {
        len <= self.len() && {
            Vec::truncate(self, len);
            true
        }
    }

    fn sibling(&self, len: usize) -> Option<Self> {
        Some(vec![0; len])
    }
}
