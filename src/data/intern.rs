//! String interning to dense `u32` ids: every string is stored once in one arena and the hash
//! table holds only ids, so a million track keys cost their bytes plus ~12 bytes each.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

#[derive(Clone, Default)]
pub struct Interner {
    arena: String,
    ends: Vec<u32>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("len", &self.len())
            .finish()
    }
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

    fn hash(&self, s: &str) -> u64 {
        self.hasher.hash_one(s)
    }

    /// The id of `s`, if interned.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        let h = self.hash(s);
        self.table.find(h, |&id| self.get(id) == s).copied()
    }

    /// The id of `s`, interning it if new. The second value says whether it was new.
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        let h = self.hash(s);
        let Self {
            arena,
            ends,
            table,
            hasher,
        } = self;
        let get = |id: u32| {
            let id = id as usize;
            let start = if id == 0 { 0 } else { ends[id - 1] as usize };
            &arena[start..ends[id] as usize]
        };
        if let Some(&id) = table.find(h, |&id| get(id) == s) {
            return (id, false);
        }
        let id = u32::try_from(ends.len()).expect("more than 2^32 distinct strings");
        arena.push_str(s);
        ends.push(u32::try_from(arena.len()).expect("interned strings exceed 4 GiB"));
        let (a, e) = (&*arena, &*ends);
        table.insert_unique(h, id, |&id| {
            let i = id as usize;
            let start = if i == 0 { 0 } else { e[i - 1] as usize };
            hasher.hash_one(&a[start..e[i] as usize])
        });
        (id, true)
    }

    pub fn id(&mut self, s: &str) -> u32 {
        self.intern(s).0
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len() as u32).map(|i| self.get(i))
    }

    /// Arena and end offsets, for the binary cache.
    pub fn raw_parts(&self) -> (&str, &[u32]) {
        (&self.arena, &self.ends)
    }

    /// Rebuilds an interner from [`Interner::raw_parts`]; fails if the parts are inconsistent.
    pub fn from_raw_parts(arena: String, ends: Vec<u32>) -> Result<Self, String> {
        let mut prev = 0u32;
        for &e in &ends {
            if e < prev || e as usize > arena.len() || !arena.is_char_boundary(e as usize) {
                return Err("string table offsets are out of order or out of range".into());
            }
            prev = e;
        }
        if prev as usize != arena.len() {
            return Err("string table length does not match its offsets".into());
        }
        let mut out = Self {
            arena,
            ends,
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        };
        out.table.reserve(out.ends.len(), |_| 0);
        for id in 0..out.ends.len() as u32 {
            let h = out.hash(out.get(id));
            let Self {
                arena,
                ends,
                table,
                hasher,
            } = &mut out;
            let (a, e) = (&*arena, &*ends);
            let get = |i: u32| {
                let i = i as usize;
                let start = if i == 0 { 0 } else { e[i - 1] as usize };
                &a[start..e[i] as usize]
            };
            if table.find(h, |&j| get(j) == get(id)).is_some() {
                return Err(format!("string table holds '{}' twice", get(id)));
            }
            table.insert_unique(h, id, |&id| {
                let i = id as usize;
                let start = if i == 0 { 0 } else { e[i - 1] as usize };
                hasher.hash_one(&a[start..e[i] as usize])
            });
        }
        Ok(out)
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
    }
}
