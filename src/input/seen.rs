//! The customer ids seen so far in a file, with the line each was first seen on: what the one-pass duplicate check
//! keeps. Compact on purpose, since it is the one thing the reader holds per row: a hash table of 4-byte indices
//! into a plain vector of ids and lines, smaller than a `HashMap` of ids (docs/performance.md, "Memory").

use hashbrown::HashTable;
use std::hash::{BuildHasher, RandomState};

#[derive(Default)]
pub(crate) struct SeenIds {
    table: HashTable<u32>,
    ids: Vec<u128>,
    lines: Vec<u64>,
    hasher: RandomState,
}

impl SeenIds {
    /// The line `id` was first seen on; when it was not seen before, it is noted as seen on `line`.
    pub(crate) fn first_line(&mut self, id: u128, line: u64) -> Option<u64> {
        let hash = self.hasher.hash_one(id);
        let ids = &self.ids;
        if let Some(&index) = self.table.find(hash, |&index| ids[index as usize] == id) {
            return Some(self.lines[index as usize]);
        }
        // More than four billion distinct ids in one file is past any CSV a spreadsheet makes: past that the
        // check stops noting new ids rather than index wrongly.
        let Ok(index) = u32::try_from(self.ids.len()) else { return None };
        self.ids.push(id);
        self.lines.push(line);
        let (ids, hasher) = (&self.ids, &self.hasher);
        self.table.insert_unique(hash, index, |&index| hasher.hash_one(ids[index as usize]));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_of_each_id_is_kept() {
        let mut seen = SeenIds::default();
        for id in 0..10_000u128 {
            assert_eq!(seen.first_line(id << 64 | id, id as u64 + 2), None);
        }
        assert_eq!(seen.first_line(5 << 64 | 5, 99_999), Some(7));
        assert_eq!(seen.first_line(9_999 << 64 | 9_999, 100_000), Some(10_001));
        assert_eq!(seen.first_line(10_000, 3), None, "a new id");
    }
}
