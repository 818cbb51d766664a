//! An IPv4 packet that may be fragmented (no DF) but is too big for its way out (a VXLAN
//! tunnel), split into fragments as a router splits it (RFC 791 §3.2, RFC 1812 §4.2.2.7):
//! each fragment's data a multiple of 8 bytes but the last's, at its offset in the
//! original, the identification kept and "more fragments" set on all but the last (on the
//! last too where the original was itself a fragment that is not the last), so that the
//! receiver puts the original back together.

use super::action::Action;
use super::packet_buffer::PacketBuffer;
use crate::lb::verdict::DropReason;
use crate::wire::checksum::internet_checksum;

/// Where the IPv4 header starts (untagged Ethernet), and its length without options.
const L3: usize = 14;
const HEADER: usize = 20;

/// Flags and fragment offset: don't fragment, more fragments, the offset (8-byte units).
const DF: u16 = 0x4000;
const MF: u16 = 0x2000;
const OFFSET: u16 = 0x1fff;

/// Packets made on the way out beside a burst's own (a split packet's fragments after its
/// first), each with its action, sent after the burst. Its room is taken at start: where it
/// is full, a packet that would need it is not split (and is dropped, `too_big`).
#[derive(Debug)]
pub struct Spill<P> {
    packets: Vec<P>,
    actions: Vec<Action>,
}

impl<P> Spill<P> {
    /// Room for `n` packets, allocated now.
    pub fn with_capacity(n: usize) -> Spill<P> {
        Spill {
            packets: Vec::with_capacity(n),
            actions: Vec::with_capacity(n),
        }
    }

    /// How many more packets it takes.
    fn room(&self) -> usize {
        self.packets.capacity() - self.packets.len()
    }

    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// The packets and their actions.
    pub fn parts(&mut self) -> (&mut [P], &[Action]) {
        (&mut self.packets, &self.actions)
    }

    /// Takes its packets with their actions out, in order, keeping its room.
    pub fn drain(&mut self) -> impl Iterator<Item = (P, Action)> + '_ {
        self.packets.drain(..).zip(self.actions.drain(..))
    }

    /// Empties it, keeping its room.
    pub fn clear(&mut self) {
        self.packets.clear();
        self.actions.clear();
    }

    /// Adds a packet with its action, where there is room (callers check [`Spill::room`]
    /// first, so that nothing grows).
    pub(super) fn push(&mut self, packet: P, action: Action) {
        if self.room() > 0 {
            self.packets.push(packet);
            self.actions.push(action);
        }
    }

    /// Packet `i` and its action, to be set.
    pub(super) fn get_mut(&mut self, i: usize) -> Option<(&mut P, &mut Action)> {
        self.packets.get_mut(i).zip(self.actions.get_mut(i))
    }
}

/// Splits the IPv4 packet framed in `p` (untagged Ethernet) into fragments of at most
/// `max_ip` bytes of IP packet: the first stays in `p`, the others go into new buffers of
/// the same kind, in order, at the end of `spill` (their action a `too_big` drop for the
/// caller to set). Returns how many went to `spill`: 0 for a packet that fits once the
/// bytes its frame holds behind it are cut off (they are). None, with `p` and `spill`
/// unchanged, when the packet may not or cannot be split: not IPv4, DF set, IP options
/// (which fragments copy by rules of their own; rare, not split), lengths that do not check
/// out (a fragment reaching beyond 65,535 bytes too), too little room in `spill`, or no free
/// buffer.
pub(super) fn split<P: PacketBuffer>(
    p: &mut P,
    max_ip: usize,
    spill: &mut Spill<P>,
) -> Option<usize> {
    let f = p.bytes();
    let header: [u8; HEADER] = f.get(L3..L3 + HEADER)?.try_into().ok()?;
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let flags = u16::from_be_bytes([header[6], header[7]]);
    let ipv4 = f.get(12..14) == Some(&[0x08, 0x00]) && header[0] == 0x45;
    if !ipv4 || total < HEADER || L3 + total > f.len() {
        return None;
    }
    // A packet that fits, in a frame with bytes behind it (padding, or worse): those go.
    if total <= max_ip {
        return p.truncate(L3 + total).then_some(0);
    }
    if flags & DF != 0 || max_ip < HEADER + 8 {
        return None;
    }
    let data = total - HEADER;
    let (offset, more) = (flags & OFFSET, flags & MF != 0);
    // A fragment whose data would reach beyond a datagram's 65,535 bytes is no fragment of
    // any real datagram: not split, whose offsets would not fit their field.
    if usize::from(offset) * 8 + data > 0xffff {
        return None;
    }
    let chunk = (max_ip - HEADER) & !7;
    let pieces = data.div_ceil(chunk);
    if pieces - 1 > spill.room() {
        return None;
    }
    let first = spill.len();
    for k in 1..pieces {
        let start = k * chunk;
        let len = chunk.min(data - start);
        let Some(mut piece) = p.sibling(L3 + HEADER + len) else {
            // None free: the pieces made so far go back.
            spill.packets.truncate(first);
            spill.actions.truncate(first);
            return None;
        };
        let (from, to) = (p.bytes(), piece.bytes());
        to[..L3 + HEADER].copy_from_slice(&from[..L3 + HEADER]);
        to[L3 + HEADER..].copy_from_slice(&from[L3 + HEADER + start..][..len]);
        let at = offset + (start / 8) as u16;
        set_fragment(&mut to[L3..L3 + HEADER], len, at, k < pieces - 1 || more);
        spill.push(piece, Action::Drop(DropReason::TooBig));
    }
    let f = p.bytes();
    set_fragment(&mut f[L3..L3 + HEADER], chunk, offset, true);
    p.truncate(L3 + HEADER + chunk).then_some(pieces - 1)
}

/// Makes `header` (an IPv4 header without options) that of a fragment of `len` bytes of
/// data at `offset` (8-byte units), with "more fragments" as `more` says; its checksum
/// anew.
fn set_fragment(header: &mut [u8], len: usize, offset: u16, more: bool) {
    let total = (HEADER + len) as u16;
    header[2..4].copy_from_slice(&total.to_be_bytes());
    let flags = offset | if more { MF } else { 0 };
    header[6..8].copy_from_slice(&flags.to_be_bytes());
    header[10..12].fill(0);
    let sum = internet_checksum(header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An untagged frame holding an IPv4 packet (no options) of `data` with these flags and
    /// offset, its header checksum right, and `pad` bytes of Ethernet padding behind it.
    fn frame(data: &[u8], flags: u16, pad: usize) -> Vec<u8> {
        let mut f = vec![0xaa; L3 - 2];
        f.extend_from_slice(&[0x08, 0x00]);
        let mut header = [0u8; HEADER];
        header[0] = 0x45;
        header[2..4].copy_from_slice(&((HEADER + data.len()) as u16).to_be_bytes());
        header[4..6].copy_from_slice(&0xbeefu16.to_be_bytes());
        header[6..8].copy_from_slice(&flags.to_be_bytes());
        header[8] = 64;
        header[9] = 17;
        header[12..20].copy_from_slice(&[10, 0, 0, 50, 10, 0, 0, 100]);
        let sum = internet_checksum(&header);
        header[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&header);
        f.extend_from_slice(data);
        f.extend(std::iter::repeat(0).take(pad));
        f
    }

    proptest! {
        /// Whatever the sizes, the fragments each fit, carry the original's header but for
        /// length, flags, offset and checksum, and hold its data in order at their offsets,
        /// "more fragments" on all but the last (and on the last as the original had it).
        #[test]
        fn fragments_fit_and_put_back_together_are_the_original(
            len in 1usize..3000,
            max_ip in 28usize..1500,
            offset in 0u16..8192,
            more in any::<bool>(),
            pad in 0usize..8,
        ) {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let flags = offset | if more { MF } else { 0 };
            let original = frame(&data, flags, pad);
            let mut first = original.clone();
            let mut spill = Spill::with_capacity(1024);
            let Some(n) = split(&mut first, max_ip, &mut spill) else {
                let beyond = usize::from(offset) * 8 + len > 0xffff;
                prop_assert!(beyond, "not split though too big");
                prop_assert_eq!(&first, &original, "left as it was");
                return Ok(());
            };
            if HEADER + len <= max_ip {
                prop_assert_eq!(n, 0, "a packet that fits is not split");
                prop_assert_eq!(&first[..], &original[..L3 + HEADER + len], "only trimmed");
                return Ok(());
            }
            prop_assert_eq!(n, spill.len());
            let pieces: Vec<Vec<u8>> =
                std::iter::once(first).chain(spill.drain().map(|(p, _)| p)).collect();
            let mut put_together = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                let header = &piece[L3..L3 + HEADER];
                prop_assert_eq!(&piece[..L3], &original[..L3]);
                prop_assert_eq!(internet_checksum(header), 0, "piece {}'s checksum", i);
                let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
                prop_assert!(total <= max_ip && L3 + total == piece.len());
                let f = u16::from_be_bytes([header[6], header[7]]);
                prop_assert_eq!(usize::from((f & OFFSET) - offset) * 8, put_together.len());
                let last = i == pieces.len() - 1;
                prop_assert_eq!(f & MF != 0, !last || more, "piece {}'s more fragments", i);
                prop_assert!(last || (total - HEADER) % 8 == 0);
                for at in [0..2, 4..6, 8..10, 12..20] {
                    prop_assert_eq!(&header[at.clone()], &original[L3..L3 + HEADER][at]);
                }
                put_together.extend_from_slice(&piece[L3 + HEADER..]);
            }
            prop_assert_eq!(put_together, data);
        }
    }

    /// Not IPv4, DF, IP options, a spill without room or a frame shorter than its packet:
    /// nothing split, nothing changed.
    #[test]
    fn what_may_not_or_cannot_be_split_is_left_alone() {
        let data = vec![1; 3000];
        let df = frame(&data, DF, 0);
        let mut options = frame(&data, 0, 0);
        options[L3] = 0x46;
        let mut arp = frame(&data, 0, 0);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let mut short = frame(&data, 0, 0);
        short.truncate(2000);
        for (what, f, room) in [
            ("not IPv4", arp, 8),
            ("DF", df, 8),
            ("options", options, 8),
            ("short", short, 8),
            ("no room", frame(&data, 0, 0), 1),
        ] {
            let mut p = f.clone();
            let mut spill = Spill::with_capacity(room);
            assert_eq!(split(&mut p, 1450, &mut spill), None, "{what}");
            assert_eq!((p, spill.len()), (f, 0), "{what}");
        }
    }
}
