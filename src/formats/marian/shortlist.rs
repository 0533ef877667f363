//! Marian's binary lexical shortlist (`lex.*.s2t.bin`): for every source word, the target words
//! it is likely to translate to. Decoding scores only those (plus the most frequent words), which
//! is both faster and what the reference engine's outputs depend on.

use crate::error::{Error, Result};

const MAGIC: u64 = 0xF11A_48D5_0134_17F5;
/// magic, checksum, firstNum, bestNum, wordToOffsetSize, shortListsSize.
const HEADER_BYTES: usize = 48;
/// The checksum covers everything after the magic and the checksum itself.
const CHECKSUM_START: usize = 16;
/// intgemm needed output widths in multiples of 8; the reference engine kept the padding.
const PAD_TO: usize = 8;

/// A parsed shortlist: `lists[offsets[w]..offsets[w + 1]]` are source word `w`'s target ids.
pub struct Shortlist {
    file: String,
    first_num: u64,
    offsets: Vec<usize>,
    lists: Vec<u32>,
    max_id: Option<u32>,
}

impl Shortlist {
    /// `file` is the name used in error messages; `bytes` the whole file.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Shortlist> {
        let err = |message: String| Error::format(file, message);
        let header = bytes.get(..HEADER_BYTES).ok_or_else(|| {
            err(format!(
                "{} bytes is too short for the {HEADER_BYTES}-byte shortlist header",
                bytes.len()
            ))
        })?;
        let field = |i: usize| read_u64(header, i * 8).unwrap_or_default();
        let (magic, checksum, first_num) = (field(0), field(1), field(2));
        let (offsets_len, lists_len) = (field(4), field(5));
        if magic != MAGIC {
            return Err(err(format!(
                "bad shortlist magic {magic:#018x} (expected {MAGIC:#018x})"
            )));
        }
        let lists_start = expected_size(offsets_len, 8)
            .filter(|_| offsets_len > 0)
            .ok_or_else(|| err(format!("impossible source table size {offsets_len}")))?;
        let size = lists_len
            .checked_mul(4)
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| n.checked_add(lists_start));
        if size != Some(bytes.len()) {
            return Err(err(format!(
                "{offsets_len} offsets and {lists_len} list entries need {} bytes, but the file has {}",
                size.map_or_else(|| "too many".to_string(), |n| n.to_string()),
                bytes.len()
            )));
        }
        let actual = checksum_of(bytes);
        if actual != checksum {
            return Err(err(format!(
                "checksum mismatch: the file says {checksum:#018x}, the contents give {actual:#018x}"
            )));
        }
        let lists: Vec<u32> = bytes
            .get(lists_start..)
            .unwrap_or_default()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let offsets = read_offsets(
            bytes.get(HEADER_BYTES..lists_start).unwrap_or_default(),
            lists.len(),
        )
        .map_err(err)?;
        let max_id = lists.iter().copied().max();
        Ok(Shortlist {
            file: file.to_string(),
            first_num,
            offsets,
            lists,
            max_id,
        })
    }

    /// How many leading target ids (the most frequent words) every vocabulary includes.
    pub fn first_num(&self) -> u64 {
        self.first_num
    }

    /// The number of source words the table covers.
    pub fn source_words(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The largest target id in any list (`None` if every list is empty).
    pub fn max_id(&self) -> Option<u32> {
        self.max_id
    }

    /// The output vocabulary for one or several inputs: ids `0..first_num`, plus the lists of
    /// every distinct source id, padded to a multiple of 8 with the lowest unused ids
    /// `>= first_num`, sorted ascending. Source ids outside the table are an error naming the
    /// id. `vocab` bounds the result (error if any listed id >= vocab).
    pub fn vocabulary(&self, source_ids: &[u32], vocab: usize) -> Result<Vec<u32>> {
        if let Some(max) = self.max_id.filter(|&m| m as usize >= vocab) {
            // Checked for the whole file, not the lists at hand, so that a mismatched
            // shortlist fails on the first sentence rather than on some rare word.
            return Err(Error::format(
                &self.file,
                format!(
                    "the shortlist lists target id {max}, but the vocabulary has {vocab} entries"
                ),
            ));
        }
        let first = usize::try_from(self.first_num).map_or(vocab, |n| n.min(vocab));
        let mut keep = vec![false; vocab];
        if let Some(head) = keep.get_mut(..first) {
            head.fill(true);
        }
        for &source in source_ids {
            for &id in self.list(source)? {
                // In bounds: every id is <= max_id < vocab.
                if let Some(k) = keep.get_mut(id as usize) {
                    *k = true;
                }
            }
        }
        let mut count = keep.iter().filter(|&&k| k).count();
        for k in keep.iter_mut().skip(first) {
            if count % PAD_TO == 0 {
                break;
            }
            if !*k {
                *k = true;
                count += 1;
            }
        }
        // A vocabulary beyond u32 ids would need a different id type anyway.
        Ok(keep
            .iter()
            .enumerate()
            .filter(|&(_, &k)| k)
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .collect())
    }

    /// Source word `source`'s target ids (repeats across the input are harmless).
    fn list(&self, source: u32) -> Result<&[u32]> {
        let w = source as usize;
        let range = self
            .offsets
            .get(w)
            .zip(self.offsets.get(w.wrapping_add(1)))
            .and_then(|(&start, &end)| self.lists.get(start..end));
        range.ok_or_else(|| {
            Error::format(
                &self.file,
                format!(
                    "source id {source} is outside the shortlist's {} source words",
                    self.source_words()
                ),
            )
        })
    }
}

impl std::fmt::Debug for Shortlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shortlist")
            .field("file", &self.file)
            .field("first_num", &self.first_num)
            .field("source_words", &self.source_words())
            .field("entries", &self.lists.len())
            .finish()
    }
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(chunk.try_into().ok()?))
}

/// `count * width` bytes after the header, if that is a representable size.
fn expected_size(count: u64, width: u64) -> Option<usize> {
    let n = usize::try_from(count.checked_mul(width)?).ok()?;
    n.checked_add(HEADER_BYTES)
}

/// Marian's checksum: boost's `hash_combine` over the u64 words after the checksum field,
/// with `std::hash<uint64_t>` being the identity. A trailing partial word is not covered.
fn checksum_of(bytes: &[u8]) -> u64 {
    bytes
        .get(CHECKSUM_START..)
        .unwrap_or_default()
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .fold(0u64, |seed, v| {
            seed ^ v
                .wrapping_add(0x9E37_79B9)
                .wrapping_add(seed << 6)
                .wrapping_add(seed >> 2)
        })
}

/// The offset table: it must start at 0, never decrease, and end exactly at the list count,
/// so that every list entry belongs to exactly one source word.
fn read_offsets(raw: &[u8], lists_len: usize) -> std::result::Result<Vec<usize>, String> {
    let mut offsets = Vec::with_capacity(raw.len() / 8);
    let mut previous = 0usize;
    for (w, c) in raw.chunks_exact(8).enumerate() {
        let value = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let offset = usize::try_from(value)
            .ok()
            .filter(|&o| o >= previous && o <= lists_len && (w > 0 || o == 0));
        let Some(offset) = offset else {
            return Err(format!(
                "offset {value} of source word {w} is out of order or beyond the {lists_len} list entries"
            ));
        };
        offsets.push(offset);
        previous = offset;
    }
    if previous != lists_len {
        return Err(format!(
            "the offsets end at {previous}, but there are {lists_len} list entries"
        ));
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real(pair: &str) -> Shortlist {
        let path = format!(
            "{}/models/{pair}/lex.50.50.{pair}.s2t.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        Shortlist::parse(&path, &bytes).unwrap()
    }

    /// (length, sum, first 5, last 5) of a vocabulary.
    fn summary(ids: &[u32]) -> (usize, u64, Vec<u32>, Vec<u32>) {
        let sum = ids.iter().map(|&i| u64::from(i)).sum();
        let tail = ids[ids.len().saturating_sub(5)..].to_vec();
        (ids.len(), sum, ids[..5.min(ids.len())].to_vec(), tail)
    }

    #[test]
    fn real_files() {
        let enpt = real("enpt");
        assert_eq!(enpt.first_num(), 50);
        assert_eq!(enpt.source_words(), 32000);
        assert_eq!(enpt.lists.len(), 1_054_118);
        assert_eq!(enpt.max_id(), Some(31999));
        let pten = real("pten");
        assert_eq!(pten.source_words(), 32000);
        assert_eq!(pten.lists.len(), 1_186_341);
    }

    // Expected values: `s0_shortlist_ids` and `s1_shortlist_ids` of
    // /work/bergamot/intermediates_enpt.npz (numpy_ref.py, which matches the reference engine).
    #[test]
    fn real_vocabularies() {
        let enpt = real("enpt");
        let coffee = [71, 268, 265, 7, 8321, 9, 5009, 2, 1704, 3, 0];
        let ids = enpt.vocabulary(&coffee, 32000).unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let expected = (
            472,
            3_959_066,
            vec![0, 1, 2, 3, 4],
            vec![30210, 30347, 30681, 31391, 31834],
        );
        assert_eq!(summary(&ids), expected);

        // "Hello" has 94 ids before padding: the two padding ids are the first free ones >= 50.
        let ids = enpt.vocabulary(&[9086, 0], 32000).unwrap();
        let expected = (
            96,
            226_058,
            vec![0, 1, 2, 3, 4],
            vec![13602, 14353, 15702, 16429, 31039],
        );
        assert_eq!(summary(&ids), expected);
        assert_eq!(enpt.vocabulary(&[9086, 9086, 0, 0], 32000).unwrap(), ids);
    }

    #[test]
    fn real_vocabulary_errors() {
        let enpt = real("enpt");
        let err = enpt.vocabulary(&[5, 32000], 32000).unwrap_err().to_string();
        assert!(err.contains("source id 32000"), "{err}");
        let err = enpt
            .vocabulary(&[5, u32::MAX], 32000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("source id 4294967295"), "{err}");
        let err = enpt.vocabulary(&[5], 31999).unwrap_err().to_string();
        assert!(err.contains("target id 31999"), "{err}");
    }

    /// A valid shortlist with the given lists, one per source word.
    fn build(first_num: u64, lists: &[&[u32]]) -> Vec<u8> {
        let mut offsets = vec![0u64];
        for list in lists {
            offsets.push(offsets[offsets.len() - 1] + list.len() as u64);
        }
        let entries: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
        let mut out = Vec::new();
        for v in [
            MAGIC,
            0,
            first_num,
            50,
            offsets.len() as u64,
            entries.len() as u64,
        ] {
            out.extend(v.to_le_bytes());
        }
        out.extend(offsets.iter().flat_map(|o| o.to_le_bytes()));
        out.extend(entries.iter().flat_map(|e| e.to_le_bytes()));
        let checksum = checksum_of(&out);
        out[8..16].copy_from_slice(&checksum.to_le_bytes());
        out
    }

    fn small() -> Vec<u8> {
        build(3, &[&[], &[4, 9], &[2, 5, 7], &[]])
    }

    fn fails(bytes: &[u8], needle: &str) {
        let message = Shortlist::parse("small.bin", bytes)
            .unwrap_err()
            .to_string();
        assert!(message.contains("small.bin"), "{message}");
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }

    #[test]
    fn small_vocabulary() {
        let s = Shortlist::parse("small.bin", &small()).unwrap();
        assert_eq!(s.source_words(), 4);
        assert_eq!(s.max_id(), Some(9));
        // 0..3, then 4 and 9, then padded with 3, 5, 6 to reach 8.
        assert_eq!(s.vocabulary(&[1, 0], 12).unwrap(), [0, 1, 2, 3, 4, 5, 6, 9]);
        assert_eq!(s.vocabulary(&[2], 12).unwrap(), [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(s.vocabulary(&[1, 2], 10).unwrap(), [0, 1, 2, 3, 4, 5, 7, 9]);
        assert_eq!(s.vocabulary(&[], 10).unwrap(), (0..8).collect::<Vec<_>>());
        assert!(s.vocabulary(&[4], 12).is_err());
        assert!(s.vocabulary(&[1], 9).is_err());

        // The padding stops when the vocabulary runs out, and first_num is clamped to it.
        for first_num in [9, 100] {
            let s = Shortlist::parse("small.bin", &build(first_num, &[&[]])).unwrap();
            assert_eq!(s.vocabulary(&[0], 10).unwrap(), (0..10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn bad_files() {
        let mut bytes = small();
        bytes[0] ^= 1;
        fails(&bytes, "bad shortlist magic");

        let mut bytes = small();
        bytes[8] ^= 1;
        fails(&bytes, "checksum mismatch");

        // With an odd number of entries the last one is outside the checksum (Marian's rule
        // hashes whole u64 words only), so corrupt the one before it.
        let mut bytes = small();
        let second_last = bytes.len() - 5;
        bytes[second_last] ^= 1;
        fails(&bytes, "checksum mismatch");
        let mut bytes = small();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(Shortlist::parse("small.bin", &bytes).is_ok());

        let mut bytes = small();
        bytes.extend([0; 4]);
        fails(&bytes, "need 108 bytes, but the file has 112");

        for (field, value) in [(4, u64::MAX), (5, u64::MAX), (4, 0), (5, 1 << 62)] {
            let mut bytes = small();
            bytes[field * 8..field * 8 + 8].copy_from_slice(&value.to_le_bytes());
            assert!(Shortlist::parse("small.bin", &bytes).is_err());
        }

        // Offsets out of order, with a valid checksum so that the offset check is reached.
        fails(&with_offsets(&[0, 3, 2, 5, 5]), "offset 2 of source word 2");
        fails(&with_offsets(&[1, 2, 5, 5, 5]), "offset 1 of source word 0");
        fails(&with_offsets(&[0, 2, 5, 5, 4]), "offset 4 of source word 4");
        fails(&with_offsets(&[0, 2, 5, 6, 6]), "beyond the 5 list entries");
        fails(&with_offsets(&[0, 0, 2, 4, 4]), "the offsets end at 4");
    }

    /// `small()` with its offset table replaced and the checksum recomputed.
    fn with_offsets(offsets: &[u64]) -> Vec<u8> {
        let mut bytes = small();
        for (i, o) in offsets.iter().enumerate() {
            let at = HEADER_BYTES + 8 * i;
            bytes[at..at + 8].copy_from_slice(&o.to_le_bytes());
        }
        let checksum = checksum_of(&bytes);
        bytes[8..16].copy_from_slice(&checksum.to_le_bytes());
        bytes
    }

    #[test]
    fn every_truncation_fails() {
        let bytes = small();
        for len in 0..bytes.len() {
            assert!(
                Shortlist::parse("small.bin", &bytes[..len]).is_err(),
                "{len}"
            );
        }
        fails(&bytes[..20], "20 bytes is too short");
    }
}
