//! String interning to dense `u32` ids: every string is stored once in one arena and the hash
//! table holds only (id, position) entries, so a million track keys cost their bytes plus
//! about 16 bytes each, and a lookup touches the table and the arena only.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

#[derive(Clone, Copy)]
struct Entry {
    id: u32,
    start: u32,
    len: u32,
}

#[derive(Clone, Default)]
pub struct Interner {
    arena: String,
    ends: Vec<u32>,
    table: HashTable<Entry>,
    hasher: DefaultHashBuilder,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("len", &self.len())
            .finish()
    }
}

fn slice<'a>(arena: &'a str, e: &Entry) -> &'a str {
    &arena[e.start as usize..(e.start + e.len) as usize]
}

impl Interner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The string with id `id`. Panics on an id this interner never handed out.
    pub fn get(&self, id: u32) -> &str {
        let id = id as usize;
        let start = if id == 0 {
            0
        } else {
            self.ends[id - 1] as usize
        };
        &self.arena[start..self.ends[id] as usize]
    }

    /// The id of `s`, if interned.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        let h = self.hasher.hash_one(s);
        self.table
            .find(h, |e| slice(&self.arena, e) == s)
            .map(|e| e.id)
    }

    /// The id of `s`, interning it if new. The second value says whether it was new.
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        let h = self.hasher.hash_one(s);
        let Self {
            arena,
            ends,
            table,
            hasher,
        } = self;
        if let Some(e) = table.find(h, |e| slice(arena, e) == s) {
            return (e.id, false);
        }
        let id = u32::try_from(ends.len()).expect("more than 2^32 distinct strings");
        let start = arena.len() as u32;
        arena.push_str(s);
        let end = u32::try_from(arena.len()).expect("interned strings exceed 4 GiB");
        ends.push(end);
        let a = &*arena;
        table.insert_unique(
            h,
            Entry {
                id,
                start,
                len: end - start,
            },
            |e| hasher.hash_one(slice(a, e)),
        );
        (id, true)
    }

    pub fn id(&mut self, s: &str) -> u32 {
        self.intern(s).0
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len() as u32).map(|i| self.get(i))
    }

    /// Arena and end offsets, for the binary store.
    pub fn raw_parts(&self) -> (&str, &[u32]) {
        (&self.arena, &self.ends)
    }

    /// Rebuilds an interner from [`Interner::raw_parts`]; fails if the parts are inconsistent
    /// or hold a string twice.
    pub fn from_raw_parts(
        arena: String,
        ends: Vec<u32>,
    ) -> Result<Self, crate::data::error::DataError> {
        use crate::data::error::DataError;
        let mut prev = 0u32;
        for &e in &ends {
            if e < prev || e as usize > arena.len() || !arena.is_char_boundary(e as usize) {
                return Err(DataError::Corrupt(
                    "string table offsets are out of order or out of range".into(),
                ));
            }
            prev = e;
        }
        if prev as usize != arena.len() {
            return Err(DataError::Corrupt(
                "string table length does not match its offsets".into(),
            ));
        }
        let hasher = DefaultHashBuilder::default();
        let mut table = HashTable::with_capacity(ends.len());
        let mut start = 0u32;
        for (id, &end) in ends.iter().enumerate() {
            let e = Entry {
                id: id as u32,
                start,
                len: end - start,
            };
            let s = slice(&arena, &e);
            let h = hasher.hash_one(s);
            if table.find(h, |o| slice(&arena, o) == s).is_some() {
                return Err(DataError::Corrupt(format!(
                    "string table holds '{s}' twice"
                )));
            }
            table.insert_unique(h, e, |o| hasher.hash_one(slice(&arena, o)));
            start = end;
        }
        Ok(Self {
            arena,
            ends,
            table,
            hasher,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_densely_and_round_trips() {
        let mut i = Interner::new();
        assert_eq!(i.intern("a"), (0, true));
        assert_eq!(i.intern("ünïcode"), (1, true));
        assert_eq!(i.intern(""), (2, true));
        assert_eq!(i.intern("a"), (0, false));
        assert_eq!(i.get(1), "ünïcode");
        assert_eq!(i.lookup(""), Some(2));
        let (a, e) = i.raw_parts();
        let j = Interner::from_raw_parts(a.to_string(), e.to_vec()).unwrap();
        assert_eq!(j.iter().collect::<Vec<_>>(), vec!["a", "ünïcode", ""]);
        assert_eq!(j.lookup("ünïcode"), Some(1));
        assert!(Interner::from_raw_parts("ab".into(), vec![1]).is_err());
        assert!(
            Interner::from_raw_parts("aa".into(), vec![1, 2])
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }
}
