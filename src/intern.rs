//! Interning of table and principal names into dense `u32` ids, so that the detector's hot path
//! hashes a small integer instead of a string, and a Parquet dictionary can be mapped to ids once
//! per column chunk. Ids depend on arrival order: never let one reach an alert or a sort order.

use rustc_hash::FxHashMap;
use std::sync::Arc;

/// A dense id handed out by an [`Interner`].
pub type Id = u32;

/// Maps names to dense ids and back.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: FxHashMap<Arc<str>, Id>,
    names: Vec<Arc<str>>,
}

impl Interner {
    /// The id of `name`, allocating one on first sight.
    #[inline]
    pub fn intern(&mut self, name: &str) -> Id {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = Id::try_from(self.names.len()).expect("fewer than 2^32 distinct names");
        let name: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&name));
        self.ids.insert(name, id);
        id
    }

    /// The id of `name` if it was interned before.
    pub fn get(&self, name: &str) -> Option<Id> {
        self.ids.get(name).copied()
    }

    /// The name behind `id`.
    #[inline]
    pub fn name(&self, id: Id) -> &Arc<str> {
        &self.names[id as usize]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_stable() {
        let mut names = Interner::default();
        assert_eq!(names.intern("alice"), 0);
        assert_eq!(names.intern("bob"), 1);
        assert_eq!(names.intern("alice"), 0);
        assert_eq!(&**names.name(1), "bob");
        assert_eq!(names.get("carol"), None);
        assert_eq!(names.len(), 2);
    }
}
